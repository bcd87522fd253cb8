-- Forgotten passwords: each reset a user asked for, kept only as the
-- SHA-256 hash (hex) of its single-use token, until it is spent, expires
-- (and a later request prunes it) or its user goes.
CREATE TABLE password_resets (
    token_hash text        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX password_resets_user_idx ON password_resets (user_id);
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);
