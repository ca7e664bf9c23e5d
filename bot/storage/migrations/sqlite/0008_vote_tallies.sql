-- Vote tallies kept by the database itself, so /music-top reads a few thousand rows, not every vote:
--  * vote_tallies: each clip's all-time 👍 / 👎 (also what its buttons and /music-history show);
--  * vote_days and vote_hours: the same per clip per UTC day and per UTC hour, so a rolling window sums the
--    whole days and hours after its start plus the raw votes of its first partial hour, exactly.
-- A vote's contribution sits in the day and hour of its voted_at; switching or removing it moves or removes it.
BEGIN IMMEDIATE;

CREATE TABLE vote_tallies (
    clip_id  TEXT    PRIMARY KEY REFERENCES clips (id),
    guild_id INTEGER NOT NULL,
    up       INTEGER NOT NULL CHECK (up >= 0),
    down     INTEGER NOT NULL CHECK (down >= 0)
);

CREATE TABLE vote_days (
    guild_id INTEGER NOT NULL,
    day      TEXT    NOT NULL,  -- '2026-11-27', the first 10 characters of voted_at
    clip_id  TEXT    NOT NULL,
    up       INTEGER NOT NULL CHECK (up >= 0),
    down     INTEGER NOT NULL CHECK (down >= 0),
    PRIMARY KEY (guild_id, day, clip_id)
) WITHOUT ROWID;

CREATE TABLE vote_hours (
    guild_id INTEGER NOT NULL,
    hour     TEXT    NOT NULL,  -- '2026-11-27T10', the first 13 characters of voted_at
    clip_id  TEXT    NOT NULL,
    up       INTEGER NOT NULL CHECK (up >= 0),
    down     INTEGER NOT NULL CHECK (down >= 0),
    PRIMARY KEY (guild_id, hour, clip_id)
) WITHOUT ROWID;

-- Backfill: one pass over the votes (sorted once, not read through the (clip, user) index), then the all-time
-- and daily tallies from the hours.
INSERT INTO vote_hours (guild_id, hour, clip_id, up, down)
    SELECT jobs.guild_id, counted.hour, counted.clip_id, counted.up, counted.down
    FROM (SELECT clip_id, substr(voted_at, 1, 13) AS hour, sum(value = 1) AS up, sum(value = -1) AS down
          FROM votes NOT INDEXED GROUP BY clip_id, hour) AS counted
    JOIN clips ON clips.id = counted.clip_id JOIN jobs ON jobs.id = clips.job_id
    ORDER BY 1, 2, 3;
INSERT INTO vote_tallies (clip_id, guild_id, up, down)
    SELECT clip_id, guild_id, sum(up), sum(down) FROM vote_hours GROUP BY clip_id ORDER BY clip_id;
INSERT INTO vote_days (guild_id, day, clip_id, up, down)
    SELECT guild_id, substr(hour, 1, 10), clip_id, sum(up), sum(down) FROM vote_hours
    GROUP BY guild_id, substr(hour, 1, 10), clip_id;

-- The all-time board walks this index from the top score down (ties are then sorted by delivery time).
CREATE INDEX vote_tallies_by_score ON vote_tallies (guild_id, up - down DESC);

CREATE TRIGGER votes_tally_insert AFTER INSERT ON votes
BEGIN
    INSERT INTO vote_tallies (clip_id, guild_id, up, down)
        SELECT NEW.clip_id, jobs.guild_id, NEW.value = 1, NEW.value = -1
        FROM clips JOIN jobs ON jobs.id = clips.job_id WHERE clips.id = NEW.clip_id
        ON CONFLICT (clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
    INSERT INTO vote_days (guild_id, day, clip_id, up, down)
        SELECT guild_id, substr(NEW.voted_at, 1, 10), NEW.clip_id, NEW.value = 1, NEW.value = -1
        FROM vote_tallies WHERE clip_id = NEW.clip_id
        ON CONFLICT (guild_id, day, clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
    INSERT INTO vote_hours (guild_id, hour, clip_id, up, down)
        SELECT guild_id, substr(NEW.voted_at, 1, 13), NEW.clip_id, NEW.value = 1, NEW.value = -1
        FROM vote_tallies WHERE clip_id = NEW.clip_id
        ON CONFLICT (guild_id, hour, clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
END;

CREATE TRIGGER votes_tally_delete AFTER DELETE ON votes
BEGIN
    UPDATE vote_days SET up = up - (OLD.value = 1), down = down - (OLD.value = -1)
    WHERE guild_id = (SELECT guild_id FROM vote_tallies WHERE clip_id = OLD.clip_id)
      AND day = substr(OLD.voted_at, 1, 10) AND clip_id = OLD.clip_id;
    UPDATE vote_hours SET up = up - (OLD.value = 1), down = down - (OLD.value = -1)
    WHERE guild_id = (SELECT guild_id FROM vote_tallies WHERE clip_id = OLD.clip_id)
      AND hour = substr(OLD.voted_at, 1, 13) AND clip_id = OLD.clip_id;
    UPDATE vote_tallies SET up = up - (OLD.value = 1), down = down - (OLD.value = -1) WHERE clip_id = OLD.clip_id;
END;

-- A switched vote (the toggle's upsert) or any other change: the old contribution out, the new one in.
CREATE TRIGGER votes_tally_update AFTER UPDATE ON votes
BEGIN
    UPDATE vote_days SET up = up - (OLD.value = 1), down = down - (OLD.value = -1)
    WHERE guild_id = (SELECT guild_id FROM vote_tallies WHERE clip_id = OLD.clip_id)
      AND day = substr(OLD.voted_at, 1, 10) AND clip_id = OLD.clip_id;
    UPDATE vote_hours SET up = up - (OLD.value = 1), down = down - (OLD.value = -1)
    WHERE guild_id = (SELECT guild_id FROM vote_tallies WHERE clip_id = OLD.clip_id)
      AND hour = substr(OLD.voted_at, 1, 13) AND clip_id = OLD.clip_id;
    UPDATE vote_tallies SET up = up - (OLD.value = 1), down = down - (OLD.value = -1) WHERE clip_id = OLD.clip_id;
    INSERT INTO vote_tallies (clip_id, guild_id, up, down)
        SELECT NEW.clip_id, jobs.guild_id, NEW.value = 1, NEW.value = -1
        FROM clips JOIN jobs ON jobs.id = clips.job_id WHERE clips.id = NEW.clip_id
        ON CONFLICT (clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
    INSERT INTO vote_days (guild_id, day, clip_id, up, down)
        SELECT guild_id, substr(NEW.voted_at, 1, 10), NEW.clip_id, NEW.value = 1, NEW.value = -1
        FROM vote_tallies WHERE clip_id = NEW.clip_id
        ON CONFLICT (guild_id, day, clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
    INSERT INTO vote_hours (guild_id, hour, clip_id, up, down)
        SELECT guild_id, substr(NEW.voted_at, 1, 13), NEW.clip_id, NEW.value = 1, NEW.value = -1
        FROM vote_tallies WHERE clip_id = NEW.clip_id
        ON CONFLICT (guild_id, hour, clip_id) DO UPDATE SET up = up + excluded.up, down = down + excluded.down;
END;

PRAGMA user_version = 8;
COMMIT;
