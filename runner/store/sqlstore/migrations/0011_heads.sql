-- The branch and tag heads the engine last saw of each watched
-- repository, from deliveries and from listing the repository: a head the
-- forge shows and this table does not is a push whose delivery was
-- missed. A row with ref '' marks a repository listed at least once.
CREATE TABLE heads (
    repo    TEXT   NOT NULL,
    ref     TEXT   NOT NULL,
    sha     TEXT   NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (repo, ref)
);
