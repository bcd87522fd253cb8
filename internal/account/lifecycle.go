package account

import (
	"context"
	"log/slog"

	"github.com/usersvc/usersvc"
)

// Messages of the account lifecycle.
const (
	MsgWrongPassword     = "Current password is incorrect"
	MsgSamePassword      = "Must differ from the current password"
	MsgNotASession       = "Not a live session of this user"
	MsgCannotDisableSelf = "An admin may not disable their own account"
)

// EventPasswordChangeFailed is the security event of a wrong current
// password given to ChangePassword.
const EventPasswordChangeFailed = "password_change_failed"

// UpdateProfile changes the user's name, phone, locale and time zone (the
// user, or an admin), validated as on registration, and returns the user
// as it now is. An empty patch is EInvalid.
func (s *Service) UpdateProfile(ctx context.Context, p Principal, userID string, patch usersvc.ProfilePatch) (*usersvc.User, error) {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return nil, err
	}
	if patch.Empty() {
		return nil, usersvc.Errorf(usersvc.EInvalid, MsgEmptyProfile)
	}
	if err := patch.Validate(usersvc.FieldErrors{}); err != nil {
		return nil, err
	}
	u, err := s.users.UpdateProfile(ctx, userID, patch, s.clock())
	if err != nil {
		return nil, notFound(err)
	}
	return u, nil
}

// MsgEmptyProfile is the message of a profile update that names no known key.
const MsgEmptyProfile = "At least one of name, phone, locale, timezone is required"

// PasswordChange is the input of ChangePassword. Keep, when set, is a
// refresh token of the caller whose session survives the change; every
// other session of the user ends.
type PasswordChange struct {
	Current usersvc.Password
	New     usersvc.Password
	Keep    string
}

// ChangePassword replaces the user's password (the user alone: the current
// password is required, so an admin cannot do it for someone else). A wrong
// current password is an EInvalid field error of "current_password", and
// counts against the login rate limits of the user's email and the client
// address. The new password follows the registration rules. On success
// every refresh family of the user ends except the one of pc.Keep, and the
// number of families ended is returned. Access tokens already issued stay
// valid until they expire.
func (s *Service) ChangePassword(ctx context.Context, p Principal, userID string, pc PasswordChange) (int, error) {
	if err := s.authorize(ctx, p, userID, Owner); err != nil {
		return 0, err
	}
	return s.changePassword(ctx, userID, pc)
}

// Validate records in fe every rule the change breaks that needs no
// lookup, leaving alone the fields that already have an entry there (a
// field that failed to decode is not checked again). It returns fe.Err().
// The new password's rules (at most 128 characters among them) are checked
// before anything is hashed.
func (pc *PasswordChange) Validate(fe usersvc.FieldErrors) error {
	if _, bad := fe["current_password"]; !bad && pc.Current == "" {
		fe.Add("current_password", usersvc.MsgRequired)
	}
	if _, bad := fe["new_password"]; !bad {
		for _, m := range usersvc.CheckPassword(string(pc.New)) {
			fe.Add("new_password", m)
		}
		if _, bad := fe["new_password"]; !bad && pc.New == pc.Current {
			fe.Add("new_password", MsgSamePassword)
		}
	}
	return fe.Err()
}

// changePassword does the work of ChangePassword once the caller is known
// to be the user.
func (s *Service) changePassword(ctx context.Context, userID string, pc PasswordChange) (int, error) {
	fe := usersvc.FieldErrors{}
	_ = pc.Validate(fe) // the problems are in fe, reported with those of the session to keep
	now := s.clock()
	keepFamily := ""
	if _, bad := fe["refresh"]; !bad && pc.Keep != "" {
		claims, err := s.tokens.ParseRefresh(pc.Keep, now)
		if err != nil || claims.UserID != userID {
			fe.Add("refresh", MsgNotASession)
		} else {
			st, err := s.sessions.RefreshTokenState(ctx, claims.JTI)
			switch {
			case isNotFound(err):
				fe.Add("refresh", MsgNotASession)
			case err != nil:
				return 0, err
			case st.Token.UserID != userID || st.FamilyRevoked || !now.Before(st.FamilyExpiresAt):
				fe.Add("refresh", MsgNotASession)
			default:
				keepFamily = st.Token.FamilyID
			}
		}
	}
	if err := fe.Err(); err != nil {
		return 0, err
	}

	u, err := s.user(ctx, userID)
	if err != nil {
		return 0, err
	}
	if err := s.loginBlocked(ctx, u.Email); err != nil {
		return 0, err
	}
	_, cred, err := s.users.UserByEmail(ctx, u.Email)
	if err != nil {
		return 0, notFound(err)
	}
	ok, _, err := s.hasher.Verify(ctx, string(pc.Current), cred.Hash)
	if err != nil {
		return 0, err
	}
	if !ok {
		s.loginFailed(ctx, u.Email)
		s.security(ctx, EventPasswordChangeFailed, slog.String("user_id", userID))
		fe.Add("current_password", MsgWrongPassword)
		return 0, fe.Err()
	}
	s.loginSucceeded(ctx, u.Email)
	fresh, err := s.hasher.Hash(ctx, string(pc.New))
	if err != nil {
		return 0, err
	}
	n, err := s.users.ChangePassword(ctx, userID, fresh, keepFamily, now)
	if err != nil {
		return 0, notFound(err)
	}
	s.logger.InfoContext(ctx, "password changed", slog.String("user_id", userID), slog.Int("sessions_ended", n))
	return n, nil
}

// SetActive enables or disables the user (admins alone) and returns the
// user as it now is. Disabling ends every session of the user at once:
// its refresh families are revoked (enabling it again does not bring them
// back) and its access tokens are refused from the next request on. An
// admin may not disable their own account (EConflict).
func (s *Service) SetActive(ctx context.Context, p Principal, userID string, active bool) (*usersvc.User, error) {
	if err := s.authorize(ctx, p, userID, Admin); err != nil {
		return nil, err
	}
	if !active && p.UserID == userID {
		return nil, usersvc.Errorf(usersvc.EConflict, MsgCannotDisableSelf)
	}
	now := s.clock()
	u, err := s.users.SetActive(ctx, userID, active, now)
	if err != nil {
		return nil, notFound(err)
	}
	s.logger.InfoContext(ctx, "account status changed", slog.String("user_id", userID), slog.Bool("is_active", active), slog.String("by_user_id", p.UserID))
	return u, nil
}

// DeleteUser removes the user with its devices and refresh tokens (the
// user, or an admin). Its access tokens are refused from the next request
// on, and its email may register again.
func (s *Service) DeleteUser(ctx context.Context, p Principal, userID string) error {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return err
	}
	if err := s.users.DeleteUser(ctx, userID, s.clock()); err != nil {
		return notFound(err)
	}
	s.logger.InfoContext(ctx, "account deleted", slog.String("user_id", userID), slog.String("by_user_id", p.UserID))
	return nil
}
