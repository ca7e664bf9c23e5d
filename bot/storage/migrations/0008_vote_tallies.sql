-- (being written: kept vote tallies for the leaderboard)
BEGIN IMMEDIATE;
PRAGMA user_version = 8;
COMMIT;
