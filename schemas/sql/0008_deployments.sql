-- Deployments: a stable endpoint (a route-mode worker) in front of one or two services (serve-mode
-- workers, rows of `services`). A rollout is a state machine whose state is the deployment's row
-- (phase, and the plan and progress in `rollout`); every transition is also a row of
-- deployment_events, written in the same transaction, before the change it announces takes
-- effect (see include/mlops/deploy/rollout.hpp).
CREATE TABLE deployments (
  name             TEXT PRIMARY KEY,
  model            TEXT NOT NULL,
  host             TEXT NOT NULL,
  port             INTEGER NOT NULL,   -- the stable endpoint; 0 until the router reports it
  device           TEXT NOT NULL,      -- for the backends: auto, cpu or cuda
  router_pid       INTEGER NOT NULL,   -- 0 while it starts
  router_start     INTEGER NOT NULL,   -- the kernel's start time of router_pid (pid reuse)
  token            TEXT NOT NULL,      -- the router's admin token (also in its 0600 token file)
  log_path         TEXT NOT NULL,      -- the router's log, relative to the .mlops directory
  stable_version   INTEGER NOT NULL,
  stable_service   TEXT NOT NULL,
  previous_version INTEGER,            -- the stable version before the last promotion (rollback)
  phase            TEXT NOT NULL,      -- stable, starting, progressing, paused, finishing, aborting
  rollout          TEXT,               -- JSON: the rollout under way, its plan and progress
  last_rollout     TEXT,               -- JSON: the last finished one, with its outcome
  controller_pid   INTEGER NOT NULL DEFAULT 0,  -- the mlops process driving the rollout
  controller_start INTEGER NOT NULL DEFAULT 0,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The audit trail. Rows stay when a deployment is removed (its last row says so).
CREATE TABLE deployment_events (
  id         INTEGER PRIMARY KEY,
  deployment TEXT NOT NULL,
  at         TEXT NOT NULL,
  phase      TEXT NOT NULL,  -- the phase entered
  step       INTEGER,        -- the rollout step, when there is one
  reason     TEXT NOT NULL,
  details    TEXT            -- JSON: weights, analysis numbers
) STRICT;
CREATE INDEX deployment_events_by_name ON deployment_events (deployment, id);
