-- Several engines on one database: a running run is leased by the engine
-- executing it (owner), until lease_until (microseconds). An engine renews
-- its leases while it runs; another may take over a run whose lease ended.
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_owner ON runs (owner, status);
