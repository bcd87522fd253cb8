-- Changes of email waiting for their confirmation from the new address,
-- kept only as the SHA-256 hash (hex) of the confirmation token, until
-- confirmed, expired (and a later request of the user prunes it) or the
-- user goes.
CREATE TABLE email_changes (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    old_email  TEXT    NOT NULL,
    new_email  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX email_changes_user_idx ON email_changes (user_id);
