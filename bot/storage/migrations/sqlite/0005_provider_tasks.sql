-- Backends that answer with a task id (sunoapi, aimlapi /v2) are polled by it, before any clip id is known;
-- some models take a requested duration.
BEGIN IMMEDIATE;

ALTER TABLE jobs ADD COLUMN provider_task_id TEXT;
ALTER TABLE jobs ADD COLUMN duration_seconds INTEGER;

PRAGMA user_version = 5;
COMMIT;
