-- Placeholder on the performance branch only: rusqlite_migration needs consecutive numbers,
-- and 13 belongs to another branch. Delete this folder when merging that one.
SELECT 1;
