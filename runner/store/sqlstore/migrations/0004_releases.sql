-- The evidence of canary releases: every analysis measurement, and every
-- rollback with what triggered it and the config-repo commits involved.
CREATE TABLE measurements (
    id         {{ID}},
    run_id     BIGINT           NOT NULL REFERENCES runs (id),
    idx        INTEGER          NOT NULL,
    weight     INTEGER          NOT NULL,
    metric     TEXT             NOT NULL,
    query      TEXT             NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    min_bound  DOUBLE PRECISION,
    max_bound  DOUBLE PRECISION,
    requests   DOUBLE PRECISION NOT NULL,
    outcome    TEXT             NOT NULL,
    message    TEXT             NOT NULL,
    at         BIGINT           NOT NULL
);
CREATE INDEX measurements_run ON measurements (run_id, id);

CREATE TABLE rollbacks (
    id              {{ID}},
    run_id          BIGINT NOT NULL REFERENCES runs (id),
    app             TEXT   NOT NULL,
    source_sha      TEXT   NOT NULL,
    digest          TEXT   NOT NULL,
    trigger_kind    TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    weight          INTEGER NOT NULL,
    release_commit  TEXT   NOT NULL,
    rollback_commit TEXT   NOT NULL,
    evidence_json   TEXT   NOT NULL,
    detected_at     BIGINT NOT NULL,
    restored_at     BIGINT NOT NULL
);
CREATE INDEX rollbacks_app ON rollbacks (app, detected_at);
