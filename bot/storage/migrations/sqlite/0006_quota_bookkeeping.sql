-- Quota bookkeeping kept by the database itself, so no code path can charge or refund without it:
--  * the ledger: a 'reserve' row when a charged job is inserted, a 'refund' row when it stops being charged;
--  * usage counters per server per UTC day and month, and per member per UTC day, so a reservation checks
--    its limits in constant time however many jobs the server has had.
BEGIN IMMEDIATE;

CREATE TABLE quota_counters (
    guild_id INTEGER NOT NULL,
    scope    TEXT    NOT NULL,  -- 'day', 'month', or 'member:<user id>' (per member per day)
    period   TEXT    NOT NULL,  -- '2026-11-27' for days, '2026-11' for months
    used     INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (guild_id, scope, period)
);

INSERT INTO quota_counters (guild_id, scope, period, used)
    SELECT guild_id, 'day', substr(created_at, 1, 10), count(*) FROM jobs WHERE charged = 1
    GROUP BY guild_id, substr(created_at, 1, 10);
INSERT INTO quota_counters (guild_id, scope, period, used)
    SELECT guild_id, 'month', substr(created_at, 1, 7), count(*) FROM jobs WHERE charged = 1
    GROUP BY guild_id, substr(created_at, 1, 7);
INSERT INTO quota_counters (guild_id, scope, period, used)
    SELECT guild_id, 'member:' || requester_id, substr(created_at, 1, 10), count(*) FROM jobs WHERE charged = 1
    GROUP BY guild_id, requester_id, substr(created_at, 1, 10);

CREATE TRIGGER jobs_reserve AFTER INSERT ON jobs WHEN NEW.charged = 1
BEGIN
    INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)
    VALUES (NEW.guild_id, NEW.requester_id, NEW.id, 'reserve', NEW.created_at);
    INSERT INTO quota_counters (guild_id, scope, period, used)
    VALUES (NEW.guild_id, 'day', substr(NEW.created_at, 1, 10), 1),
           (NEW.guild_id, 'month', substr(NEW.created_at, 1, 7), 1),
           (NEW.guild_id, 'member:' || NEW.requester_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (guild_id, scope, period) DO UPDATE SET used = used + 1;
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
END;

PRAGMA user_version = 6;
COMMIT;
