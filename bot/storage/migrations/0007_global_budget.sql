-- (being written: bot-wide budget counters and quota indexes)
BEGIN IMMEDIATE;
PRAGMA user_version = 7;
COMMIT;
