-- How many of a server's generations are running (reserved, submitted or polling), kept by triggers as a counter
-- (scope 'running', period ''), so a reservation checks max_concurrent in constant time however many run.
-- +1 when a job is inserted unfinished, -1 when it finishes. The running row is locked first in both (before
-- the day and month rows), so a reservation and a finishing job never deadlock.

INSERT INTO quota_counters (guild_id, scope, period, used)
    SELECT guild_id, 'running', '', count(*) FROM jobs
    WHERE status IN ('reserved', 'submitted', 'polling') GROUP BY guild_id;

CREATE FUNCTION jobs_running_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quota_counters AS c (guild_id, scope, period, used) VALUES (NEW.guild_id, 'running', '', 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = c.used + 1;
    RETURN NULL;
END $$;
-- PostgreSQL fires a table's triggers in name order: "jobs_a_running_start" before "jobs_reserve".
CREATE TRIGGER jobs_a_running_start AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status IN ('reserved', 'submitted', 'polling')) EXECUTE FUNCTION jobs_running_start();

CREATE FUNCTION jobs_running_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE quota_counters SET used = used - 1 WHERE guild_id = NEW.guild_id AND scope = 'running' AND period = '';
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_running_end AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (OLD.status IN ('reserved', 'submitted', 'polling') AND NEW.status NOT IN ('reserved', 'submitted', 'polling'))
    EXECUTE FUNCTION jobs_running_end();
