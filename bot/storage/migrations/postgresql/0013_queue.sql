-- A line per server: a request beyond max_concurrent is reserved at once (it counts against the daily and
-- monthly limits, so a line cannot oversubscribe them) and waits, `queued`, until it is first in line and a
-- slot is free. Waiting jobs are counted in scope 'queued', no longer in 'running'; starting moves one over
-- (running row first, as everywhere, so no two writers deadlock).

ALTER TABLE guild_limits ADD COLUMN max_queued INTEGER CHECK (max_queued >= -1);
ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0 CHECK (queued IN (0, 1));
CREATE INDEX jobs_queued ON jobs (guild_id, id) WHERE queued = 1;

CREATE OR REPLACE FUNCTION jobs_running_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quota_counters AS c (guild_id, scope, period, used)
    VALUES (NEW.guild_id, CASE WHEN NEW.queued = 1 THEN 'queued' ELSE 'running' END, '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = c.used + 1;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION jobs_running_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE quota_counters SET used = used - 1
    WHERE guild_id = NEW.guild_id AND scope = CASE WHEN OLD.queued = 1 THEN 'queued' ELSE 'running' END
      AND period = '';
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_leave_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quota_counters AS c (guild_id, scope, period, used) VALUES (NEW.guild_id, 'running', '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = c.used + 1;
    UPDATE quota_counters SET used = used - 1 WHERE guild_id = NEW.guild_id AND scope = 'queued' AND period = '';
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_leave_line AFTER UPDATE OF queued ON jobs
    FOR EACH ROW WHEN (OLD.queued = 1 AND NEW.queued = 0 AND NEW.status IN ('reserved', 'submitted', 'polling'))
    EXECUTE FUNCTION jobs_leave_line();
