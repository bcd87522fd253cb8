-- Verified addresses: when the user proved to receive at its email and at
-- its phone (NULL until then, and again once the address changes); and the
-- verification under way per user and channel, kept only as hashes of its
-- code and (email) link token, with the wrong codes counted.
ALTER TABLE users
    ADD COLUMN email_verified_at timestamptz,
    ADD COLUMN phone_verified_at timestamptz;

CREATE TABLE verifications (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel    text        NOT NULL CHECK (channel IN ('email', 'sms')),
    address    text        NOT NULL,
    code_hash  text        NOT NULL,
    token_hash text        UNIQUE,
    attempts   integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel)
);
