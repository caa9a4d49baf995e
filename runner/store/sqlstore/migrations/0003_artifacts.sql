-- Documents stages produce (scan reports, SBOMs), kept with the run and
-- tied to what they describe (an image digest).
CREATE TABLE artifacts (
    run_id     BIGINT  NOT NULL REFERENCES runs (id),
    idx        INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    media_type TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    data       {{BLOB}}  NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (run_id, idx, attempt, name)
);
CREATE INDEX artifacts_subject ON artifacts (subject);
