-- What processes sharing one database agree on (see bot/storage/coordination.py):
--  * handled_interactions: every Discord interaction is claimed once before anything is reserved or voted, so
--    two sessions receiving the same one act once; rows older than a day are pruned.
--  * identify_slots: when each IDENTIFY bucket (shard_id % max_concurrency) may identify next, so processes
--    starting together keep to Discord's one IDENTIFY per bucket per 5 seconds.
BEGIN IMMEDIATE;

CREATE TABLE handled_interactions (
    id         INTEGER PRIMARY KEY,
    owner      TEXT    NOT NULL,
    handled_at TEXT    NOT NULL
);
CREATE INDEX handled_interactions_by_time ON handled_interactions (handled_at);

CREATE TABLE identify_slots (
    bucket  INTEGER PRIMARY KEY,
    next_at TEXT    NOT NULL
);

PRAGMA user_version = 10;
COMMIT;
