-- Activity ids already processed, so a repeated delivery is handled once. Pruned by age.
CREATE TABLE inbox_seen (
    activity_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX inbox_seen_received ON inbox_seen (received_at);
