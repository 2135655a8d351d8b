-- Experiment tracking, with MLflow's semantics: params are written once, metrics append
-- (key, value, step, timestamp), tags overwrite. Times are milliseconds since the epoch, as in
-- MLflow, so that its clients' numbers carry over unchanged.
CREATE TABLE experiments (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  deleted_at TEXT  -- `exp rm`: hidden, its runs kept
) STRICT;

CREATE TABLE runs (
  seq           INTEGER PRIMARY KEY,  -- the key of run_metrics rows: 8 bytes, not 32
  id            TEXT NOT NULL UNIQUE,  -- 32 lowercase hex digits, random
  experiment_id INTEGER NOT NULL REFERENCES experiments (id),
  name          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed')),
  parent_id     TEXT REFERENCES runs (id),
  start_time    INTEGER NOT NULL,
  end_time      INTEGER,
  command       TEXT,  -- `run exec`: the command line, as JSON array
  host          TEXT,
  exit_code     INTEGER,
  git_commit    TEXT,  -- lineage of the working directory, as for datasets
  git_branch    TEXT,
  git_dirty     INTEGER,
  git_path      TEXT,
  git_remote    TEXT,
  deleted_at    TEXT   -- `run rm`; `run restore` clears it
) STRICT;
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time);
CREATE INDEX runs_by_parent ON runs (parent_id);

CREATE TABLE run_params (
  run_id TEXT NOT NULL REFERENCES runs (id),
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE run_tags (
  run_id TEXT NOT NULL REFERENCES runs (id),
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;
-- Search finds runs by (key, value): `params.lr = '0.01'` reads only the matching rows.
CREATE INDEX run_params_by_value ON run_params (key, value);
CREATE INDEX run_tags_by_value ON run_tags (key, value);

-- Every metric point. A million of them must load in about a second, so rows are small: the run
-- by its integer seq, and checked once per batch rather than per row (no foreign key). A NULL
-- value is NaN, which SQLite cannot store.
CREATE TABLE run_metrics (
  run       INTEGER NOT NULL,  -- runs.seq
  key       TEXT NOT NULL,
  step      INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  value     REAL
) STRICT;
CREATE INDEX run_metrics_by_key ON run_metrics (run, key, step);

-- Each metric's latest point (highest step, then timestamp, then value, as MLflow), kept with
-- every batch, so that search filters and orders without scanning histories.
CREATE TABLE run_latest_metrics (
  run_id    TEXT NOT NULL REFERENCES runs (id),
  key       TEXT NOT NULL,
  step      INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  value     REAL,
  PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX run_latest_metrics_by_value ON run_latest_metrics (key, value);

-- Files a run stored; each is an object pinned by object_refs (kind 'run', owner RUN_ID/NAME).
CREATE TABLE run_artifacts (
  run_id     TEXT NOT NULL REFERENCES runs (id),
  name       TEXT NOT NULL,
  digest     TEXT NOT NULL,
  kind       TEXT NOT NULL,  -- blob or tree
  size       INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, name)
) STRICT, WITHOUT ROWID;
