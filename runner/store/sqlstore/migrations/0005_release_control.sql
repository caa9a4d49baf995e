-- Where each canary release stands (its checkpoint, so a restarted engine
-- carries on from it), and the commands people and alerts give it.
CREATE TABLE releases (
    run_id     BIGINT  PRIMARY KEY REFERENCES runs (id),
    app        TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    step       INTEGER NOT NULL,
    weight     INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    data_json  TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX releases_app ON releases (app, state);

CREATE TABLE release_commands (
    id          {{ID}},
    run_id      BIGINT NOT NULL REFERENCES runs (id),
    command     TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    detail_json TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    consumed_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX release_commands_run ON release_commands (run_id, consumed_at, id);

-- A run rolls back at most once; a rollback completed after a crash
-- finds the record already there.
CREATE UNIQUE INDEX rollbacks_run ON rollbacks (run_id);
