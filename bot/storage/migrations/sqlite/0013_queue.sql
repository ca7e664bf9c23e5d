-- A line per server: a request beyond max_concurrent is reserved at once (it counts against the daily and
-- monthly limits, so a line cannot oversubscribe them) and waits, `queued`, until it is first in line and a
-- slot is free. Waiting jobs are counted in scope 'queued', no longer in 'running'; starting moves one over.
BEGIN IMMEDIATE;

ALTER TABLE guild_limits ADD COLUMN max_queued INTEGER CHECK (max_queued >= -1);
ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0 CHECK (queued IN (0, 1));
CREATE INDEX jobs_queued ON jobs (guild_id, id) WHERE queued = 1;

DROP TRIGGER jobs_running_start;
DROP TRIGGER jobs_running_end;

CREATE TRIGGER jobs_running_start AFTER INSERT ON jobs WHEN NEW.status IN ('reserved', 'submitted', 'polling')
BEGIN
    INSERT INTO quota_counters (guild_id, scope, period, used)
    VALUES (NEW.guild_id, CASE WHEN NEW.queued = 1 THEN 'queued' ELSE 'running' END, '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = used + 1;
END;

CREATE TRIGGER jobs_running_end AFTER UPDATE OF status ON jobs
    WHEN OLD.status IN ('reserved', 'submitted', 'polling') AND NEW.status NOT IN ('reserved', 'submitted', 'polling')
BEGIN
    UPDATE quota_counters SET used = used - 1
    WHERE guild_id = NEW.guild_id AND scope = CASE WHEN OLD.queued = 1 THEN 'queued' ELSE 'running' END
      AND period = '';
END;

CREATE TRIGGER jobs_leave_line AFTER UPDATE OF queued ON jobs
    WHEN OLD.queued = 1 AND NEW.queued = 0 AND NEW.status IN ('reserved', 'submitted', 'polling')
BEGIN
    INSERT INTO quota_counters (guild_id, scope, period, used) VALUES (NEW.guild_id, 'running', '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = used + 1;
    UPDATE quota_counters SET used = used - 1 WHERE guild_id = NEW.guild_id AND scope = 'queued' AND period = '';
END;

PRAGMA user_version = 13;
COMMIT;
