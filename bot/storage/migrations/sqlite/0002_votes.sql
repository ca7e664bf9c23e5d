-- One vote per member per clip; tallies and leaderboards are computed from these rows.
BEGIN IMMEDIATE;

CREATE TABLE votes (
    clip_id  TEXT    NOT NULL REFERENCES clips (id),
    user_id  INTEGER NOT NULL,
    value    INTEGER NOT NULL CHECK (value IN (-1, 1)),
    voted_at TEXT    NOT NULL,
    PRIMARY KEY (clip_id, user_id)
);
CREATE INDEX votes_by_time ON votes (voted_at);
CREATE INDEX clips_delivered ON clips (job_id) WHERE message_id IS NOT NULL;
CREATE INDEX jobs_by_requester ON jobs (guild_id, requester_id, created_at);

PRAGMA user_version = 2;
COMMIT;
