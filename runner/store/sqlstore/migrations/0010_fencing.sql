-- Fencing: a running run's epoch is raised by every claim and takeover.
-- An engine writes under the epoch it claimed the run at; the store
-- refuses its writes once another engine has raised it.
ALTER TABLE runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
