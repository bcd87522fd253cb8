-- Users, their push-token devices and the server-side state of refresh
-- tokens. Timestamps are INTEGER microseconds since the Unix epoch, UTC;
-- booleans are 0 or 1. Every table is STRICT so that a value of the wrong
-- type is refused instead of stored.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    push_token    TEXT,
    pref_email    INTEGER NOT NULL DEFAULT 1 CHECK (pref_email IN (0, 1)),
    pref_push     INTEGER NOT NULL DEFAULT 1 CHECK (pref_push IN (0, 1)),
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
) STRICT;

-- Newest first, for the paginated list.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);
-- Finding who currently holds a token that moves or is invalidated.
CREATE INDEX users_push_token_idx ON users (push_token) WHERE push_token IS NOT NULL;

CREATE TABLE devices (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    TEXT,
    token        TEXT    NOT NULL,
    device_type  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    CONSTRAINT devices_token_key UNIQUE (token)
) STRICT;

-- One record per device id of a user; records without a device id are
-- told apart by their token.
CREATE UNIQUE INDEX devices_user_device_key ON devices (user_id, device_id) WHERE device_id IS NOT NULL;
-- A user's devices, most recently seen first.
CREATE INDEX devices_user_seen_idx ON devices (user_id, last_seen_at DESC, id DESC);

CREATE TABLE refresh_families (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);
CREATE INDEX refresh_families_expires_idx ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    family_id  TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    parent_jti TEXT,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at   INTEGER
) STRICT;

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
