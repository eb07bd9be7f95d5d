-- Placeholder on the client-API branch only: rusqlite_migration needs consecutive numbers, and
-- 12 and 13 belong to the timeline and accounts branches. Delete this folder when merging them.
SELECT 1;
