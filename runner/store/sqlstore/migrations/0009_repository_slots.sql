-- Run slots per repository: a run of a pipeline read from a repository
-- holds one of its repository's slots while it runs; runs beyond them
-- wait, and other repositories' runs start past them.
ALTER TABLE runs ADD COLUMN slot TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN slots INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_slot_status ON runs (slot, status) WHERE slot <> '';
-- As runs_queued_grouped: what every claim asks first.
CREATE INDEX runs_queued_slotted ON runs (id) WHERE status = 'queued' AND slot <> '';
