-- Services: model versions that `mlops serve start` launched on the bundled worker. A row is
-- written before the worker is spawned (pid 0 while it starts) and removed by `serve stop` or
-- `serve prune`. process_start (the kernel's start time of the pid, in clock ticks since boot)
-- tells our worker from an unrelated process that reused its pid.
CREATE TABLE services (
  name          TEXT PRIMARY KEY,
  model         TEXT NOT NULL,
  version       INTEGER NOT NULL,
  digest        TEXT NOT NULL,
  pid           INTEGER NOT NULL,
  process_start INTEGER NOT NULL,
  host          TEXT NOT NULL,
  port          INTEGER NOT NULL,   -- 0 until the worker reports it
  device        TEXT NOT NULL,      -- as asked: auto, cpu or cuda
  max_batch     INTEGER NOT NULL,
  log_path      TEXT NOT NULL,      -- relative to the .mlops directory
  started_at    TEXT NOT NULL
) STRICT, WITHOUT ROWID;
