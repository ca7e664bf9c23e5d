-- Moderators' rules: phrases a server refuses in prompts, lyrics, titles and style tags, and the channels where
-- /music works (none listed: everywhere). moderation_log learns the new actions (SQLite cannot change a CHECK in
-- place, so the table is rebuilt with its rows and index).
BEGIN IMMEDIATE;

CREATE TABLE blocked_phrases (
    guild_id INTEGER NOT NULL,
    words    TEXT    NOT NULL,  -- the phrase normalised: case-folded, accents off, words joined by one space
    phrase   TEXT    NOT NULL,  -- as the moderator wrote it, to list and to name in a refusal
    added_by INTEGER NOT NULL,
    added_at TEXT    NOT NULL,
    PRIMARY KEY (guild_id, words)
);

CREATE TABLE allowed_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    added_by   INTEGER NOT NULL,
    added_at   TEXT    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE moderation_log_new (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('set_limit', 'block', 'unblock', 'blocklist_add',
                                                  'blocklist_remove', 'channel_add', 'channel_remove',
                                                  'delete_song')),
    subject    TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    created_at TEXT    NOT NULL
);
INSERT INTO moderation_log_new SELECT id, guild_id, actor_id, action, subject, old_value, new_value, created_at
FROM moderation_log;
DROP TABLE moderation_log;
ALTER TABLE moderation_log_new RENAME TO moderation_log;
CREATE INDEX moderation_log_by_guild ON moderation_log (guild_id, created_at);

PRAGMA user_version = 14;
COMMIT;
