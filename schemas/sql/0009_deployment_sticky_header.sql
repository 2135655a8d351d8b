-- The router's --sticky-header, kept so that a router that died can be started again as it was
-- (`mlops deploy resume`). Empty: no stickiness.
ALTER TABLE deployments ADD COLUMN sticky_header TEXT NOT NULL DEFAULT '';
