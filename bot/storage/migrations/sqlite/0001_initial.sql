-- Jobs (one paid generation each), their clips, the quota ledger and small bot state.
BEGIN IMMEDIATE;

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    requester_id        INTEGER NOT NULL,
    backend             TEXT    NOT NULL,
    mode                TEXT    NOT NULL CHECK (mode IN ('description', 'custom')),
    prompt              TEXT    NOT NULL,
    title               TEXT,
    tags                TEXT,
    instrumental        INTEGER NOT NULL CHECK (instrumental IN (0, 1)),
    model               TEXT,
    status              TEXT    NOT NULL
                        CHECK (status IN ('reserved', 'submitted', 'polling', 'delivered', 'failed')),
    -- 1 while the generation counts against quota; set to 0 exactly once by a refund.
    charged             INTEGER NOT NULL DEFAULT 1 CHECK (charged IN (0, 1)),
    response_message_id INTEGER,
    created_at          TEXT    NOT NULL,
    submitted_at        TEXT,
    finished_at         TEXT,
    failure_reason      TEXT,
    failure_detail      TEXT
);
CREATE INDEX jobs_by_guild_time ON jobs (guild_id, created_at);
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status IN ('reserved', 'submitted', 'polling');

CREATE TABLE clips (
    id            TEXT    PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs (id),
    position      INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    title         TEXT    NOT NULL DEFAULT '',
    tags          TEXT    NOT NULL DEFAULT '',
    lyrics        TEXT    NOT NULL DEFAULT '',
    image_url     TEXT    NOT NULL DEFAULT '',
    audio_url     TEXT    NOT NULL DEFAULT '',
    duration      REAL,
    model_name    TEXT    NOT NULL DEFAULT '',
    error_message TEXT    NOT NULL DEFAULT '',
    -- The channel message that carries the clip; set once, so a clip is never posted twice.
    message_id    INTEGER,
    delivered_at  TEXT,
    UNIQUE (job_id, position)
);
CREATE INDEX clips_by_job ON clips (job_id);

-- Every reservation and refund, for auditing what was spent.
CREATE TABLE quota_ledger (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    change     TEXT    NOT NULL CHECK (change IN ('reserve', 'refund')),
    created_at TEXT    NOT NULL
);
CREATE INDEX quota_ledger_by_guild ON quota_ledger (guild_id, created_at);

CREATE TABLE bot_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

PRAGMA user_version = 1;
COMMIT;
