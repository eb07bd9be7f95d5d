-- Placeholder so that migration 11 applies on this branch (rusqlite_migration wants
-- consecutive ids). Another branch owns number 09: drop this folder when merging.
SELECT 1;
