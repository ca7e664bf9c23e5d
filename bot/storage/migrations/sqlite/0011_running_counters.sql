-- How many of a server's generations are running (reserved, submitted or polling), kept by triggers as a counter
-- (scope 'running', period ''), so a reservation checks max_concurrent in constant time however many run.
-- +1 when a job is inserted unfinished, -1 when it finishes. The reserve trigger counts it first, before the day
-- and month counters, as a finishing job does (on PostgreSQL, the same order means no two writers deadlock).
BEGIN IMMEDIATE;

INSERT INTO quota_counters (guild_id, scope, period, used)
    SELECT guild_id, 'running', '', count(*) FROM jobs
    WHERE status IN ('reserved', 'submitted', 'polling') GROUP BY guild_id;

CREATE TRIGGER jobs_running_start AFTER INSERT ON jobs WHEN NEW.status IN ('reserved', 'submitted', 'polling')
BEGIN
    INSERT INTO quota_counters (guild_id, scope, period, used) VALUES (NEW.guild_id, 'running', '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = used + 1;
END;

CREATE TRIGGER jobs_running_end AFTER UPDATE OF status ON jobs
    WHEN OLD.status IN ('reserved', 'submitted', 'polling') AND NEW.status NOT IN ('reserved', 'submitted', 'polling')
BEGIN
    UPDATE quota_counters SET used = used - 1 WHERE guild_id = NEW.guild_id AND scope = 'running' AND period = '';
END;

PRAGMA user_version = 11;
COMMIT;
