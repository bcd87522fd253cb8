-- Users, their push-token devices and the server-side state of refresh
-- tokens. Timestamps are timestamptz (microsecond precision, UTC).

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    push_token    text,
    pref_email    boolean     NOT NULL DEFAULT true,
    pref_push     boolean     NOT NULL DEFAULT true,
    is_admin      boolean     NOT NULL DEFAULT false,
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

-- Newest first, for the paginated list.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);
-- Finding who currently holds a token that moves or is invalidated.
CREATE INDEX users_push_token_idx ON users (push_token) WHERE push_token IS NOT NULL;

CREATE TABLE devices (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    text,
    token        text        NOT NULL,
    device_type  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CONSTRAINT devices_token_key UNIQUE (token)
);

-- One record per device id of a user; records without a device id are
-- told apart by their token.
CREATE UNIQUE INDEX devices_user_device_key ON devices (user_id, device_id) WHERE device_id IS NOT NULL;
-- A user's devices, most recently seen first.
CREATE INDEX devices_user_seen_idx ON devices (user_id, last_seen_at DESC, id DESC);

-- Family ids and jtis are opaque strings taken from the tokens, hence text.
CREATE TABLE refresh_families (
    id         text        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);
CREATE INDEX refresh_families_expires_idx ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    jti        text        PRIMARY KEY,
    family_id  text        NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    parent_jti text,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
