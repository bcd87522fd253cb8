-- The recipient profile and the richer preferences: phone (E.164), locale
-- (BCP 47) and time zone (IANA); the sms and in_app channel switches; the
-- user's category choices and quiet hours as JSON text (read and written
-- only whole, with the user's row); and the operator's categories.
ALTER TABLE users
    ADD COLUMN phone           text,
    ADD COLUMN locale          text,
    ADD COLUMN timezone        text,
    ADD COLUMN pref_sms        boolean NOT NULL DEFAULT true,
    ADD COLUMN pref_in_app     boolean NOT NULL DEFAULT true,
    ADD COLUMN pref_categories text    NOT NULL DEFAULT '{}',
    ADD COLUMN quiet_hours     text;

CREATE TABLE categories (
    key            text        PRIMARY KEY,
    name           text        NOT NULL,
    description    text        NOT NULL,
    default_email  boolean     NOT NULL,
    default_push   boolean     NOT NULL,
    default_sms    boolean     NOT NULL,
    default_in_app boolean     NOT NULL,
    required       boolean     NOT NULL,
    commercial     boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
