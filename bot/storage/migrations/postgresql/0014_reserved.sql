-- Number 14 belongs to the prompt-rules migration (per-server blocklists and channels) written on another branch
-- at the same time as 15; this placeholder only keeps the numbers following each other until the two branches
-- meet, when that migration takes its place.
SELECT 1;
