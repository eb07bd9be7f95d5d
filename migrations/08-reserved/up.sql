-- Placeholder: number 08 belongs to the key-id migration of issue 9.1 (another branch). Migration
-- ids must be consecutive, so this branch holds the number with an empty migration; delete this
-- folder when that branch's 08 is merged.
SELECT 1;
