-- When posting a clip began: a clip with this set but no message_id may already be in the channel
-- (the bot stopped between posting and recording), so a restart looks for it before posting again.
BEGIN IMMEDIATE;

ALTER TABLE clips ADD COLUMN posting_started_at TEXT;

PRAGMA user_version = 4;
COMMIT;
