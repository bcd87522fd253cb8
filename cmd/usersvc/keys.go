package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// loadTokens builds the token service from the configured keys: SECRET_KEY
// (or the secret generated once into $DATA_DIR) for HS256, with the secrets
// of SECRET_KEY_PREVIOUS after it to verify only; the key file (or one
// generated once into $DATA_DIR) for the asymmetric algorithms.
func loadTokens(cfg *config, logger *slog.Logger) (*token.Service, error) {
	var (
		keys *token.KeySet
		err  error
	)
	switch {
	case cfg.JWTAlgorithm == token.HS256 && cfg.SecretKey != "":
		keys, err = token.NewHMACKeySet(append([]token.Secret{token.Secret(cfg.SecretKey)}, cfg.SecretKeyPrevious...)...)
		if err != nil {
			return nil, &configError{"SECRET_KEY", "is not usable as an HS256 key"}
		}
	case cfg.JWTAlgorithm == token.HS256:
		path := secretKeyFile(cfg)
		secret, created, err := token.LoadOrGenerateSecret(path)
		if err != nil {
			return nil, fmt.Errorf("signing secret %s: %w", path, err)
		}
		if created {
			logger.Warn("SECRET_KEY is not set: generated a signing secret and kept it in the data directory; set SECRET_KEY to share it between replicas", slog.String("path", path))
		}
		if keys, err = token.NewHMACKeySet(secret); err != nil {
			return nil, fmt.Errorf("signing secret %s: %w", path, err)
		}
	case cfg.JWTPrivateKeyFile != "":
		if keys, err = token.LoadKeyFile(cfg.JWTPrivateKeyFile, cfg.JWTAlgorithm); err != nil {
			return nil, &configError{"JWT_PRIVATE_KEY_FILE", fmt.Sprintf("cannot load %s keys: %v", cfg.JWTAlgorithm, err)}
		}
	default:
		path := filepath.Join(cfg.DataDir, "jwt_"+strings.ToLower(cfg.JWTAlgorithm)+".pem")
		var created bool
		if keys, created, err = token.LoadOrGenerate(path, cfg.JWTAlgorithm); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		if created {
			logger.Warn("JWT_PRIVATE_KEY_FILE is not set: generated a signing key and kept it in the data directory", slog.String("path", path))
		}
	}
	return token.New(token.Config{Keys: keys, AccessLifetime: cfg.AccessTokenLifetime, RefreshLifetime: cfg.RefreshTokenLifetime})
}

// loadUnsubscribe builds the signer of the one-click unsubscribe links from
// UNSUBSCRIBE_KEY, with the keys of UNSUBSCRIBE_KEY_PREVIOUS after it to
// verify only. Unset, the key is generated once into $DATA_DIR and kept
// there, which suits the embedded SQLite default; on PostgreSQL, where
// replicas share the database but not a disk, it must be set, or each
// replica would refuse the links of the others. Neither the key nor its
// file's content reaches a log or an error.
func loadUnsubscribe(cfg *config, logger *slog.Logger) (*unsubscribe.Signer, error) {
	previous := make([][]byte, len(cfg.UnsubscribeKeyPrevious))
	for i, k := range cfg.UnsubscribeKeyPrevious {
		previous[i] = k
	}
	switch {
	case len(cfg.UnsubscribeKey) > 0:
		s, err := unsubscribe.New(cfg.UnsubscribeKey, previous...)
		if err != nil {
			return nil, &configError{"UNSUBSCRIBE_KEY", "is not usable as an unsubscribe key"}
		}
		return s, nil
	case cfg.postgres():
		return nil, &configError{"UNSUBSCRIBE_KEY", "must be set when the database is PostgreSQL (a generated key would live on one replica's disk)"}
	}
	path := unsubscribeKeyFile(cfg)
	key, created, err := token.LoadOrGenerateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("unsubscribe key %s: %w", path, err)
	}
	if created {
		logger.Warn("UNSUBSCRIBE_KEY is not set: generated the key of the unsubscribe links and kept it in the data directory; set UNSUBSCRIBE_KEY to share it between replicas, and keep it: a new key breaks the links already sent", slog.String("path", path))
	}
	s, err := unsubscribe.New(key, previous...)
	if err != nil {
		return nil, fmt.Errorf("unsubscribe key %s: %w", path, err)
	}
	return s, nil
}

// unsubscribeKeyFile keeps the generated unsubscribe key of the embedded
// default.
func unsubscribeKeyFile(cfg *config) string { return filepath.Join(cfg.DataDir, "unsubscribe.key") }
