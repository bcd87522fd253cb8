-- Sessions (refresh families) as a resource: when each was last used and
-- from which client, and the successor each spent refresh token got, so
-- that a retry of a lost refresh answer can be given the same successor.
ALTER TABLE refresh_families ADD COLUMN last_used_at INTEGER;
ALTER TABLE refresh_families ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_families ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN successor_jti TEXT;
