-- The record of applied migrations. PRAGMA user_version mirrors the highest version so that the
-- check at start-up reads one header field instead of a table.
CREATE TABLE schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL  -- ISO-8601 UTC
) STRICT;
