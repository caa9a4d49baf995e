-- The queued runs of concurrency groups: every claim asks whether one of
-- them may start before a run outside any group is taken, which without
-- this index reads every queued run (thousands, when a burst of webhooks
-- is waiting).
CREATE INDEX runs_queued_grouped ON runs (id) WHERE status = 'queued' AND grp <> '';
