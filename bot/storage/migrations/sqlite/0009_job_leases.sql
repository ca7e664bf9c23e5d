-- Durable ownership of unfinished jobs: the process (INSTANCE_ID) running a job and until when its lease holds.
-- A process resumes only jobs whose lease has expired, claimed in one statement; every transition of a job
-- names its owner, so a process that lost a job (taken over after its lease ran out) changes nothing.
BEGIN IMMEDIATE;

ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until TEXT;
-- Jobs left unfinished by a version without leases belong to nobody: the first process to start claims them.
-- (The claim reads the unfinished jobs through jobs_unfinished; an index on lease_until would cost every
-- reservation a fifth of its speed for no faster claim.)

PRAGMA user_version = 9;
COMMIT;
