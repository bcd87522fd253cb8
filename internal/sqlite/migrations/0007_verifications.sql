-- Verified addresses: when the user proved to receive at its email and at
-- its phone (NULL until then, and again once the address changes); and the
-- verification under way per user and channel, kept only as hashes of its
-- code and (email) link token, with the wrong codes counted.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
ALTER TABLE users ADD COLUMN phone_verified_at INTEGER;

CREATE TABLE verifications (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL CHECK (channel IN ('email', 'sms')),
    address    TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    token_hash TEXT    UNIQUE,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel)
) STRICT;
