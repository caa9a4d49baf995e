-- A run whose pipeline was read from a repository (anyone who can push
-- wrote it) is untrusted: it may only use the secrets the engine grants.
ALTER TABLE runs ADD COLUMN untrusted INTEGER NOT NULL DEFAULT 0;
