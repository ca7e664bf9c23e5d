-- Community events (see the README's Contests and Hall of fame sections):
--  * contests: a server's themed contest, its window (starts_at .. ends_at; ended early: ends_at moves to then)
--    and settings; at most one 'running' per server (contests_one_running), so two moderators starting one at
--    once get one. The results are claimed once (results_claimed_by until results_claim_until) and recorded as
--    posted (results_message_id): a claim whose process died runs out and is taken over, never posted twice;
--  * contest_entries: which generations entered which contest (a member's are capped when they enter);
--  * contest_results: the ranking frozen when the contest ended, browsable afterwards;
--  * votes.voter_joined_at: when the voter joined the server (from the click's member), so a contest may leave
--    out votes of members who joined after it started;
--  * hall_of_fame: a server's hall-of-fame channel and score; hall_of_fame_posts: each song forwarded there,
--    claimed once before forwarding, with the messages once they exist.
BEGIN IMMEDIATE;

CREATE TABLE contests (
    id                     INTEGER PRIMARY KEY,
    guild_id               INTEGER NOT NULL,
    channel_id             INTEGER NOT NULL,
    theme                  TEXT    NOT NULL,
    started_by             INTEGER NOT NULL,
    starts_at              TEXT    NOT NULL,
    ends_at                TEXT    NOT NULL,
    max_entries_per_member INTEGER CHECK (max_entries_per_member >= 1),
    exclude_new_members    INTEGER NOT NULL DEFAULT 0 CHECK (exclude_new_members IN (0, 1)),
    status                 TEXT    NOT NULL CHECK (status IN ('running', 'ended', 'cancelled')),
    announcement_id        INTEGER,
    standings_edited_at    TEXT,
    results_claimed_by     TEXT,
    results_claim_until    TEXT,
    results_message_id     INTEGER,
    results_posted_at      TEXT
);
CREATE UNIQUE INDEX contests_one_running ON contests (guild_id) WHERE status = 'running';
CREATE INDEX contests_due ON contests (ends_at) WHERE status = 'running';
CREATE INDEX contests_unposted ON contests (results_claim_until) WHERE status = 'ended' AND results_posted_at IS NULL;

CREATE TABLE contest_entries (
    job_id     INTEGER PRIMARY KEY,
    contest_id INTEGER NOT NULL,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    entered_at TEXT    NOT NULL
);
CREATE INDEX contest_entries_by_member ON contest_entries (contest_id, user_id);

CREATE TABLE contest_results (
    contest_id INTEGER NOT NULL,
    place      INTEGER NOT NULL,
    guild_id   INTEGER NOT NULL,
    clip_id    TEXT    NOT NULL,
    up         INTEGER NOT NULL,
    down       INTEGER NOT NULL,
    PRIMARY KEY (contest_id, place)
);

ALTER TABLE votes ADD COLUMN voter_joined_at TEXT;

CREATE TABLE hall_of_fame (
    guild_id   INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    threshold  INTEGER NOT NULL CHECK (threshold >= 1),
    updated_by INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE TABLE hall_of_fame_posts (
    clip_id            TEXT    PRIMARY KEY,
    guild_id           INTEGER NOT NULL,
    channel_id         INTEGER NOT NULL,
    claimed_by         TEXT    NOT NULL,
    claim_until        TEXT    NOT NULL,
    forward_message_id INTEGER,
    posted_at          TEXT
);
CREATE INDEX hall_of_fame_unposted ON hall_of_fame_posts (claim_until) WHERE posted_at IS NULL;

PRAGMA user_version = 16;
COMMIT;
