-- The operator's bot-wide budget: generations of all servers together per UTC day and month, counted by the
-- same triggers that keep the per-server counters, so a reservation checks the budget in constant time too.
BEGIN IMMEDIATE;

CREATE TABLE global_counters (
    scope  TEXT    NOT NULL CHECK (scope IN ('day', 'month')),
    period TEXT    NOT NULL,  -- '2026-11-27' for days, '2026-11' for months
    used   INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (scope, period)
) WITHOUT ROWID;

INSERT INTO global_counters (scope, period, used)
    SELECT 'day', substr(created_at, 1, 10), count(*) FROM jobs WHERE charged = 1
    GROUP BY substr(created_at, 1, 10);
INSERT INTO global_counters (scope, period, used)
    SELECT 'month', substr(created_at, 1, 7), count(*) FROM jobs WHERE charged = 1
    GROUP BY substr(created_at, 1, 7);

DROP TRIGGER jobs_reserve;
DROP TRIGGER jobs_refund;

CREATE TRIGGER jobs_reserve AFTER INSERT ON jobs WHEN NEW.charged = 1
BEGIN
    INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)
    VALUES (NEW.guild_id, NEW.requester_id, NEW.id, 'reserve', NEW.created_at);
    INSERT INTO quota_counters (guild_id, scope, period, used)
    VALUES (NEW.guild_id, 'day', substr(NEW.created_at, 1, 10), 1),
           (NEW.guild_id, 'month', substr(NEW.created_at, 1, 7), 1),
           (NEW.guild_id, 'member:' || NEW.requester_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = used + 1;
    INSERT INTO global_counters (scope, period, used)
    VALUES ('day', substr(NEW.created_at, 1, 10), 1),
           ('month', substr(NEW.created_at, 1, 7), 1)
    ON CONFLICT (scope, period) DO UPDATE SET used = used + 1;
END;

CREATE TRIGGER jobs_refund AFTER UPDATE OF charged ON jobs WHEN OLD.charged = 1 AND NEW.charged = 0
BEGIN
    INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)
    VALUES (NEW.guild_id, NEW.requester_id, NEW.id, 'refund',
            coalesce(NEW.finished_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
    UPDATE quota_counters SET used = used - 1
    WHERE guild_id = NEW.guild_id
      AND ((scope = 'day' AND period = substr(NEW.created_at, 1, 10))
        OR (scope = 'month' AND period = substr(NEW.created_at, 1, 7))
        OR (scope = 'member:' || NEW.requester_id AND period = substr(NEW.created_at, 1, 10)));
    UPDATE global_counters SET used = used - 1
    WHERE (scope = 'day' AND period = substr(NEW.created_at, 1, 10))
       OR (scope = 'month' AND period = substr(NEW.created_at, 1, 7));
END;

PRAGMA user_version = 7;
COMMIT;
