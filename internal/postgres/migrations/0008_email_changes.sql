-- Changes of email waiting for their confirmation from the new address,
-- kept only as the SHA-256 hash (hex) of the confirmation token, until
-- confirmed, expired (and a later request of the user prunes it) or the
-- user goes.
CREATE TABLE email_changes (
    token_hash text        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    old_email  text        NOT NULL,
    new_email  text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX email_changes_user_idx ON email_changes (user_id);
