-- Backends that answer with a task id (sunoapi, aimlapi /v2) are polled by it, before any clip id is known.
BEGIN IMMEDIATE;

ALTER TABLE jobs ADD COLUMN provider_task_id TEXT;

PRAGMA user_version = 5;
COMMIT;
