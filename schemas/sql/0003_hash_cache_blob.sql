-- The hash cache keeps digests as 32-byte blobs: a warm `hash` of a large tree loads every row,
-- and parsing 64 hex digits per row was a tenth of its time. The old rows are only a cache, so
-- they are dropped rather than converted (the next hash of each file refills it).
DROP TABLE hash_cache;
CREATE TABLE hash_cache (
  device   INTEGER NOT NULL,
  inode    INTEGER NOT NULL,
  size     INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  digest   BLOB NOT NULL CHECK (length(digest) = 32),
  PRIMARY KEY (device, inode)
) STRICT, WITHOUT ROWID;
