// Command mailer is an example of the notification system's email
// service for usersvc's self-service events: it follows the change feed
// (GET /api/v1/events) with the Go client and turns each message event
// into an email sent through an SMTP server with github.com/wneessen/go-mail:
//
//   - usersvc.password_reset.requested: the reset link, to the account's email;
//   - usersvc.verification.requested (channel email): the code and link;
//   - usersvc.email_change.requested: the confirmation link, to the new address;
//   - usersvc.email_change.notice: a notice, to the current address.
//
// Other events (and sms verifications, for an SMS service) are skipped. It
// keeps its cursor in memory only: a real service stores it with the
// sending, so that a restart neither loses nor repeats mail.
//
//	USERSVC_URL=http://localhost:8000 USERSVC_KEY=feed-key-0123456789abcdef \
//	SMTP_ADDR=localhost:1025 MAIL_FROM=no-reply@example.com go run ./examples/mailer
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	users, err := client.New(getenv("USERSVC_URL"), client.WithServiceKey(getenv("USERSVC_KEY")))
	if err != nil {
		return err
	}
	m, err := newMailer(getenv("SMTP_ADDR"), getenv("MAIL_FROM"))
	if err != nil {
		return err
	}
	for ev, err := range users.Events(ctx, 0, client.FeedWait(30*time.Second)) {
		if err != nil {
			log.Printf("feed: %v", err)
			continue
		}
		if err := m.deliver(ctx, ev); err != nil {
			log.Printf("event %d (%s): %v", ev.Position, ev.Type, err)
		}
	}
	return ctx.Err()
}

// mailer sends the emails of the events.
type mailer struct {
	client *mail.Client
	from   string
}

func newMailer(addr, from string) (*mailer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR: %w", err)
	}
	// A local sink takes plain SMTP; a real relay wants mail.TLSMandatory
	// and mail.WithSMTPAuth.
	c, err := mail.NewClient(host, mail.WithPort(p), mail.WithTLSPolicy(mail.NoTLS), mail.WithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	return &mailer{client: c, from: from}, nil
}

// message is the email of ev, or nil when ev is not one to mail.
func message(ev usersvc.Event) (to, subject, body string, ok bool, err error) {
	data, err := client.EventData(ev)
	if errors.Is(err, client.ErrUnknownEventType) {
		return "", "", "", false, nil
	}
	if err != nil {
		return "", "", "", false, err
	}
	link := func(l *string, token string) string {
		if l != nil {
			return *l
		}
		return "token " + token
	}
	switch d := data.(type) {
	case usersvc.PasswordResetEventData:
		return d.Email, "Reset your password",
			"Someone asked to reset the password of this account. To choose a new one, open:\n\n" + link(d.Link, d.Token) +
				"\n\nThe link works once, until " + d.ExpiresAt.Format(time.RFC1123) + ". If you did not ask, ignore this message.\n", true, nil
	case usersvc.VerificationEventData:
		if d.Channel != usersvc.ChannelEmail {
			return "", "", "", false, nil // the SMS service's
		}
		body := "Your verification code is " + d.Code + "."
		if d.Token != nil {
			body += " Or open:\n\n" + link(d.Link, *d.Token)
		}
		return d.Address, "Verify your email", body + "\n", true, nil
	case usersvc.EmailChangeEventData:
		return d.NewEmail, "Confirm your new email",
			"To make this your account's email instead of " + d.OldEmail + ", open:\n\n" + link(d.Link, d.Token) + "\n", true, nil
	case usersvc.EmailChangeNoticeEventData:
		return d.Email, "Your email is about to change",
			"Someone asked to change this account's email to " + d.NewEmail + ". If it was not you, change your password now.\n", true, nil
	}
	return "", "", "", false, nil
}

// deliver sends the email of ev, if it has one.
func (m *mailer) deliver(ctx context.Context, ev usersvc.Event) error {
	to, subject, body, ok, err := message(ev)
	if err != nil || !ok {
		return err
	}
	msg := mail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return err
	}
	if err := msg.To(to); err != nil {
		return err
	}
	msg.Subject(subject)
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, body)
	return m.client.DialAndSendWithContext(ctx, msg)
}
