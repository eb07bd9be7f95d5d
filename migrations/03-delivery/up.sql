-- Outgoing delivery (src/delivery): a durable queue. An activity is stored once; each inbox it
-- goes to is one row in `deliveries`. Times in this migration are Unix milliseconds (INTEGER):
-- the workers compare and schedule them many times a second.

-- Every activity Hortus sends, exactly as sent (the body is signed at each attempt, never stored
-- signed). The id is the activity's own id, so enqueueing the same activity twice is a no-op.
CREATE TABLE outgoing_activities (
    id            TEXT PRIMARY KEY,          -- the activity's "id"
    activity_type TEXT NOT NULL,             -- Create, Update, Delete, Accept, Follow, …
    body          TEXT NOT NULL,             -- the JSON document, as sent
    created_ms    INTEGER NOT NULL
) STRICT;

-- One delivery of one activity to one inbox. Idempotent on (activity_id, inbox).
--   state 'pending': waiting for next_attempt_ms (or leased by a worker until lease_until_ms);
--   state 'done': the peer answered 2xx; 'failed': gave up (4xx, policy, too old) — see last_error.
-- A worker claims a row by setting lease_owner/lease_until_ms; a worker that dies leaves a lease
-- that expires (or is released at start-up when no other worker pool holds the site's lock).
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    activity_id     TEXT NOT NULL REFERENCES outgoing_activities (id) ON DELETE CASCADE,
    inbox           TEXT NOT NULL,
    host            TEXT NOT NULL,           -- the inbox's host[:port]: the unit of rate limits
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,        -- give up after this (about three days)
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    last_status     INTEGER,                 -- HTTP status of the last attempt, if any
    last_error      TEXT,
    finished_ms     INTEGER,
    UNIQUE (activity_id, inbox)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX deliveries_host ON deliveries (host, state);

-- Every attempt, for `hortus queue` and for the owner who wonders what a peer said.
CREATE TABLE delivery_attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,            -- 1-based
    started_ms  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      INTEGER,                     -- NULL when no HTTP answer came back
    error       TEXT,                        -- NULL on success
    PRIMARY KEY (delivery_id, attempt)
) STRICT;

-- Per-server health: the circuit breaker. After enough consecutive failures a server is paused
-- until paused_until_ms; then one probe at a time is let through until a 2xx closes the circuit.
-- A 429 pauses a server for its Retry-After without counting as a failure.
CREATE TABLE delivery_servers (
    host                 TEXT PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    paused_until_ms      INTEGER,
    last_error           TEXT,
    last_failure_ms      INTEGER,
    last_success_ms      INTEGER
) STRICT;

-- What followers were last told about each post, so `publish` can federate exactly the changes,
-- even when it crashed between syncing posts and enqueueing their activities.
--   state 'created': a Create (or Update) went out for source_hash; 'deleted': a Delete did.
CREATE TABLE post_federation (
    post_id     INTEGER PRIMARY KEY REFERENCES posts (id),
    state       TEXT NOT NULL CHECK (state IN ('created', 'deleted')),
    source_hash TEXT NOT NULL,               -- posts.source_hash when the activity was made
    activity_id TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

-- Posts published before delivery existed were never announced; record them as they stand so
-- the first publish after this migration sends only what changes from now on.
INSERT INTO post_federation (post_id, state, source_hash, activity_id, updated_ms)
SELECT id,
       CASE WHEN deleted_at IS NULL THEN 'created' ELSE 'deleted' END,
       source_hash,
       '',
       CAST(unixepoch('subsec') * 1000 AS INTEGER)
FROM posts;
