-- Placeholder on the performance branch only: rusqlite_migration needs consecutive numbers,
-- and 14 belongs to another branch. Delete this folder when merging that one.
SELECT 1;
