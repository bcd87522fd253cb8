-- Sessions (refresh families) as a resource: when each was last used and
-- from which client, and the successor each spent refresh token got, so
-- that a retry of a lost refresh answer can be given the same successor.
ALTER TABLE refresh_families ADD COLUMN last_used_at timestamptz;
ALTER TABLE refresh_families ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE refresh_families ADD COLUMN client_addr text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN successor_jti text;
