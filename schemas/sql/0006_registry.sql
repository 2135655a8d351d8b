-- The model registry: numbered versions of a named model, each a file in the object store
-- pinned by object_refs (kind 'model', owner NAME@N), with its lineage and the aliases that
-- promotions move. Every alias move is a row in model_alias_history.
CREATE TABLE models (
  name       TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE model_versions (
  model       TEXT NOT NULL REFERENCES models (name),
  version     INTEGER NOT NULL CHECK (version > 0),
  digest      TEXT NOT NULL,  -- the model file's object
  size        INTEGER NOT NULL,
  file_name   TEXT NOT NULL,  -- as registered: model.onnx
  format      TEXT NOT NULL CHECK (format IN ('onnx', 'unknown')),
  signature   TEXT,           -- JSON from `mlops-worker inspect`: inputs, outputs, opsets, ir_version
  description TEXT NOT NULL,
  run_id      TEXT,           -- the run that produced it
  git_commit  TEXT,           -- of the run, else of the working directory at registration
  git_branch  TEXT,
  git_dirty   INTEGER,
  same_as     INTEGER,        -- an earlier version with the same content
  created_at  TEXT NOT NULL,
  archived_at TEXT,
  deleted_at  TEXT,
  PRIMARY KEY (model, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX model_versions_by_digest ON model_versions (digest);

CREATE TABLE model_version_datasets (
  model           TEXT NOT NULL,
  version         INTEGER NOT NULL,
  dataset         TEXT NOT NULL,
  dataset_version INTEGER NOT NULL,
  PRIMARY KEY (model, version, dataset, dataset_version),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE model_version_tags (
  model   TEXT NOT NULL,
  version INTEGER NOT NULL,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (model, version, key),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE model_aliases (
  model      TEXT NOT NULL,
  alias      TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, alias),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE model_alias_history (
  id           INTEGER PRIMARY KEY,
  model        TEXT NOT NULL,
  alias        TEXT NOT NULL,
  from_version INTEGER,  -- null: the alias is new
  to_version   INTEGER,  -- null: the alias was removed
  at           TEXT NOT NULL,
  command      TEXT NOT NULL  -- what moved it: the mlops command line
) STRICT;
CREATE INDEX model_alias_history_by_model ON model_alias_history (model, id);
