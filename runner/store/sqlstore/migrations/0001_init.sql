-- Runs, their stages and attempts, log lines and timeline events.
-- Times are microseconds since the Unix epoch (0 = not yet).
-- Kept to SQL that SQLite and PostgreSQL both accept, but for the
-- auto-increment ids (see dialect).
CREATE TABLE runs (
    id              {{ID}},
    pipeline        TEXT    NOT NULL,
    app             TEXT    NOT NULL,
    pipeline_file   TEXT    NOT NULL,
    pipeline_source TEXT    NOT NULL,
    workdir         TEXT    NOT NULL,
    trigger_json    TEXT    NOT NULL,
    grp             TEXT    NOT NULL,
    policy          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    resumes         INTEGER NOT NULL,
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT  NOT NULL,
    finished_at     BIGINT  NOT NULL
);
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_grp ON runs (grp, status, id);
CREATE INDEX runs_pipeline ON runs (pipeline, id);

CREATE TABLE stages (
    run_id       BIGINT  NOT NULL REFERENCES runs (id),
    idx          INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    outputs_json TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT  NOT NULL,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE attempts (
    run_id      BIGINT  NOT NULL,
    idx         INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL,
    PRIMARY KEY (run_id, idx, attempt),
    FOREIGN KEY (run_id, idx) REFERENCES stages (run_id, idx)
);

CREATE TABLE logs (
    seq     {{ID}},
    run_id  BIGINT  NOT NULL REFERENCES runs (id),
    stage   TEXT    NOT NULL,
    attempt INTEGER NOT NULL,
    at      BIGINT  NOT NULL,
    text    TEXT    NOT NULL
);
CREATE INDEX logs_run ON logs (run_id, seq);

CREATE TABLE events (
    id      {{ID}},
    run_id  BIGINT NOT NULL REFERENCES runs (id),
    at      BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    message TEXT   NOT NULL
);
CREATE INDEX events_run ON events (run_id, id);
