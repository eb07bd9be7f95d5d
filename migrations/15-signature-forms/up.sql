-- The HTTP Signature form each server accepted (PROTOCOL.md §3). Hortus signs draft-cavage
-- unless a server answered 401 to it and 2xx to RFC 9421 (Mastodon 4.5+ verifies both; a
-- server that wants 9421 only is remembered here, across restarts). Keyed like
-- deliveries.host (`delivery::queue::server_of`: host, or host:port).
CREATE TABLE signature_forms (
    host       TEXT PRIMARY KEY,
    form       TEXT NOT NULL CHECK (form IN ('cavage', 'rfc9421')),
    updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
