-- Members' data is theirs (see the README's Privacy section):
--  * jobs.erased_at: when the job's words (prompt, title, style, and its clips' lyrics, titles and links) were
--    erased: at the requester's /music-privacy forget-me, past DATA_RETENTION_DAYS, or when its server's data
--    went. The job row itself stays, so usage and quota history still add up. jobs_unerased finds, oldest first,
--    the jobs retention has still to erase (erased ones leave it);
--  * votes_by_user: a member's votes, for forget-me; clips_by_message: the song a message carries, for a
--    moderator's delete-song;
--  * departed_guilds: servers the bot was removed from, and when; joining again forgets the departure. A
--    server's data is erased DATA_RETENTION_DAYS after it left;
--  * forgotten_requests: when a member who asked to be forgotten last asked for a song in a server (their jobs
--    no longer name them), so a cooldown still counts from it; kept only while a cooldown could still apply.

ALTER TABLE jobs ADD COLUMN erased_at TEXT COLLATE "C";
CREATE INDEX jobs_unerased ON jobs (created_at) WHERE erased_at IS NULL;
CREATE INDEX votes_by_user ON votes (user_id, clip_id);
CREATE INDEX clips_by_message ON clips (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE departed_guilds (
    guild_id BIGINT PRIMARY KEY,
    left_at  TEXT   COLLATE "C" NOT NULL
);

CREATE TABLE forgotten_requests (
    guild_id     BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    requested_at TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
