-- The content-addressed object store (.mlops/objects/sha256/ab/cdef...). A row exists only once
-- its object is durably in place; gc deletes the row before the file.
CREATE TABLE objects (
  digest     TEXT PRIMARY KEY,  -- 64 lowercase hex digits of the SHA-256 of the content
  kind       TEXT NOT NULL CHECK (kind IN ('blob', 'tree')),  -- tree: a directory manifest
  size       INTEGER NOT NULL,  -- bytes of the object itself
  created_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Everything that keeps an object alive: `artifact add` pins, datasets, runs, models. Rows of
-- kind 'tree' are owned by a tree object (the files its manifest lists) and keep their objects
-- alive only while that tree object is itself referenced.
CREATE TABLE object_refs (
  digest     TEXT NOT NULL REFERENCES objects (digest),
  kind       TEXT NOT NULL,  -- 'artifact', 'tree', later 'dataset', 'run', 'model'...
  owner      TEXT NOT NULL,  -- what refers: a path, a tree digest, a dataset version...
  created_at TEXT NOT NULL,
  PRIMARY KEY (kind, owner, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX object_refs_by_digest ON object_refs (digest);

-- Digests of files on disk, valid while every identity field is unchanged, so that unchanged
-- files are never read twice.
CREATE TABLE hash_cache (
  device   INTEGER NOT NULL,
  inode    INTEGER NOT NULL,
  size     INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  digest   TEXT NOT NULL,
  PRIMARY KEY (device, inode)
) STRICT, WITHOUT ROWID;
