-- Moderators' rules: phrases a server refuses in prompts, lyrics, titles and style tags, and the channels where
-- /music works (none listed: everywhere). moderation_log learns the new actions.

CREATE TABLE blocked_phrases (
    guild_id BIGINT NOT NULL,
    words    TEXT   NOT NULL,  -- the phrase normalised: case-folded, accents off, words joined by one space
    phrase   TEXT   NOT NULL,  -- as the moderator wrote it, to list and to name in a refusal
    added_by BIGINT NOT NULL,
    added_at TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, words)
);

CREATE TABLE allowed_channels (
    guild_id   BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    added_by   BIGINT NOT NULL,
    added_at   TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

ALTER TABLE moderation_log DROP CONSTRAINT moderation_log_action_check;
ALTER TABLE moderation_log ADD CONSTRAINT moderation_log_action_check
    CHECK (action IN ('set_limit', 'block', 'unblock', 'blocklist_add', 'blocklist_remove', 'channel_add',
                      'channel_remove', 'delete_song'));
