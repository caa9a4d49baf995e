-- Intake: webhook deliveries, schedule fires, the audit log, and a
-- deduplication key on runs so one delivery or one schedule fire can never
-- create a second run, whatever crashes or races happen.
ALTER TABLE runs ADD COLUMN dedup_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX runs_dedup_key ON runs (dedup_key) WHERE dedup_key <> '';

CREATE TABLE deliveries (
    forge        TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    received_at  BIGINT NOT NULL,
    event        TEXT   NOT NULL,
    repo         TEXT   NOT NULL,
    ref          TEXT   NOT NULL,
    sha          TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    matches_json TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    PRIMARY KEY (forge, id)
);
CREATE INDEX deliveries_status ON deliveries (status, received_at);

CREATE TABLE schedules (
    key       TEXT   NOT NULL PRIMARY KEY,
    last_fire BIGINT NOT NULL
);

CREATE TABLE audit (
    id     {{ID}},
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    target TEXT   NOT NULL,
    detail TEXT   NOT NULL
);
