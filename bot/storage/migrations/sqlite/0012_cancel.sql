-- A member (the requester or a moderator) asked to cancel the job: who. The process running the job stops it
-- at its next safe point; a job that never reached the music service is given back, one that did still counts.
BEGIN IMMEDIATE;

ALTER TABLE jobs ADD COLUMN cancel_requested_by INTEGER;

PRAGMA user_version = 12;
COMMIT;
