-- Datasets: named, numbered snapshots of a directory. A version's files are a tree object (its
-- manifest) in the object store, pinned by an object_refs row (kind 'dataset', owner 'NAME@N')
-- that `data rm` deletes, so gc can collect what no other version shares.
CREATE TABLE datasets (
  name       TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE dataset_versions (
  dataset    TEXT NOT NULL REFERENCES datasets (name),
  version    INTEGER NOT NULL CHECK (version > 0),  -- 1, 2, 3... per dataset, never reused
  tree       TEXT NOT NULL,     -- the manifest object; pinned while live (a removed version's may be gone)
  files      INTEGER NOT NULL,
  size       INTEGER NOT NULL,  -- bytes of all files
  message    TEXT NOT NULL,
  path       TEXT NOT NULL,     -- where it was added from: relative to the project, or absolute
  git_commit TEXT,              -- lineage, when the path (or working directory) was in a git repository
  git_branch TEXT,
  git_dirty  INTEGER,
  git_path   TEXT,              -- the path relative to the repository root
  git_remote TEXT,
  created_at TEXT NOT NULL,
  deleted_at TEXT,              -- set by `data rm`; the row stays for the history
  PRIMARY KEY (dataset, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX dataset_versions_by_tree ON dataset_versions (tree);

CREATE TABLE dataset_tags (
  dataset    TEXT NOT NULL,
  tag        TEXT NOT NULL,
  version    INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (dataset, tag),
  FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
) STRICT, WITHOUT ROWID;
