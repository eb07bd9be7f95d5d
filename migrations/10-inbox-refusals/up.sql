-- Requests from ALLOWED servers that the inbox refused (src/inbox/refusals.rs): a federation
-- bug must be visible without reading logs (issue 10.4). Refused servers are knocks, not here.
-- One row per (server, check, reason) per hour: a repeat within the hour raises `count`.
-- Bounded: the oldest rows go first past a cap; every text field is stripped and truncated.
CREATE TABLE inbox_refusals (
    id            INTEGER PRIMARY KEY,
    host          TEXT NOT NULL,            -- host[:port] of the signature's keyId
    check_name    TEXT NOT NULL,            -- which inbox check failed, e.g. 'signature'
    reason        TEXT NOT NULL,            -- what went wrong, in plain words
    key_id        TEXT,
    actor_id      TEXT,                     -- the activity's claimed actor, when the body says
    activity_type TEXT,
    count         INTEGER NOT NULL DEFAULT 1,
    first_at      TEXT NOT NULL,            -- RFC 3339 UTC; starts the hour of deduplication
    last_at       TEXT NOT NULL
) STRICT;
CREATE INDEX inbox_refusals_key ON inbox_refusals (host, check_name, reason, first_at);
CREATE INDEX inbox_refusals_actor ON inbox_refusals (actor_id, last_at) WHERE actor_id IS NOT NULL;
CREATE INDEX inbox_refusals_last ON inbox_refusals (last_at);
