-- The recipient profile and the richer preferences: phone (E.164), locale
-- (BCP 47) and time zone (IANA); the sms and in_app channel switches; the
-- user's category choices and quiet hours as JSON text (read and written
-- only whole, with the user's row); and the operator's categories.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN timezone TEXT;
ALTER TABLE users ADD COLUMN pref_sms INTEGER NOT NULL DEFAULT 1 CHECK (pref_sms IN (0, 1));
ALTER TABLE users ADD COLUMN pref_in_app INTEGER NOT NULL DEFAULT 1 CHECK (pref_in_app IN (0, 1));
ALTER TABLE users ADD COLUMN pref_categories TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN quiet_hours TEXT;

CREATE TABLE categories (
    key            TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    default_email  INTEGER NOT NULL CHECK (default_email IN (0, 1)),
    default_push   INTEGER NOT NULL CHECK (default_push IN (0, 1)),
    default_sms    INTEGER NOT NULL CHECK (default_sms IN (0, 1)),
    default_in_app INTEGER NOT NULL CHECK (default_in_app IN (0, 1)),
    required       INTEGER NOT NULL CHECK (required IN (0, 1)),
    commercial     INTEGER NOT NULL CHECK (commercial IN (0, 1)),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
