-- The credential version moves on with every change that must end the
-- sessions of a user (a new password, a disable). A login records a
-- session only while the version it read with the password hash is
-- still the user's.
ALTER TABLE users ADD COLUMN cred_version bigint NOT NULL DEFAULT 0;
