package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/usersvc/usersvc/internal/token"
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
