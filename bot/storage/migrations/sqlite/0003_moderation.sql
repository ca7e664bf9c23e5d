-- Per-server limits set by moderators, blocked members, and an audit log of every moderation change.
BEGIN IMMEDIATE;

-- NULL in a limit column means "use the default from the bot's settings".
CREATE TABLE guild_limits (
    guild_id         INTEGER PRIMARY KEY,
    daily            INTEGER CHECK (daily >= -1),
    monthly          INTEGER CHECK (monthly >= -1),
    per_member_daily INTEGER CHECK (per_member_daily >= -1),
    cooldown_seconds INTEGER CHECK (cooldown_seconds >= 0),
    max_concurrent   INTEGER CHECK (max_concurrent >= -1),
    updated_by       INTEGER,
    updated_at       TEXT
);

CREATE TABLE blocked_members (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    reason     TEXT,
    blocked_by INTEGER NOT NULL,
    blocked_at TEXT    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Who changed what, when, from which value to which: limits, blocks and unblocks.
CREATE TABLE moderation_log (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('set_limit', 'block', 'unblock')),
    subject    TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    created_at TEXT    NOT NULL
);
CREATE INDEX moderation_log_by_guild ON moderation_log (guild_id, created_at);

CREATE INDEX jobs_running ON jobs (guild_id) WHERE status IN ('reserved', 'submitted', 'polling');

PRAGMA user_version = 3;
COMMIT;
