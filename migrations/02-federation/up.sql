-- Federation policy (src/federation). Which servers Hortus talks to, who was refused, and which
-- followers are held back because their server is no longer allowed.

-- Allow and block entries. `pattern` is the normalised form written by federation::Pattern:
--   'example.net'        exactly that host, any port
--   '*.example.net'      that domain and every subdomain, any port
--   'example.net:8443'   exactly that host, only when the port is written out (tests, dev)
-- Precedence (a block always wins; allowlist mode needs an allow entry) is in federation/policy.rs.
CREATE TABLE federation_domains (
    list       TEXT NOT NULL CHECK (list IN ('allow', 'block')),
    pattern    TEXT NOT NULL,
    note       TEXT,                      -- e.g. the public comment of an imported block
    created_at TEXT NOT NULL,
    PRIMARY KEY (list, pattern)
) STRICT, WITHOUT ROWID;

-- One row, bumped by every change to federation_domains (triggers, so no writer can forget).
-- A running server compares it to the version of its in-memory policy and reloads on a
-- difference: `hortus block add` in another process takes effect without a restart.
CREATE TABLE federation_policy_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO federation_policy_version (id, version) VALUES (1, 0);

CREATE TRIGGER federation_domains_inserted AFTER INSERT ON federation_domains BEGIN
    UPDATE federation_policy_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER federation_domains_deleted AFTER DELETE ON federation_domains BEGIN
    UPDATE federation_policy_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER federation_domains_updated AFTER UPDATE ON federation_domains BEGIN
    UPDATE federation_policy_version SET version = version + 1 WHERE id = 1;
END;

-- Followers set to state 'suspended' because their server was blocked or left the allowlist,
-- with the state to go back to. Restoring is an explicit owner action, never automatic.
-- The row goes away with the follower (an Undo(Follow) deletes it).
CREATE TABLE follower_suspensions (
    actor_id       TEXT PRIMARY KEY REFERENCES followers (actor_id) ON DELETE CASCADE,
    previous_state TEXT NOT NULL CHECK (previous_state IN ('pending', 'accepted')),
    reason         TEXT NOT NULL,
    suspended_at   TEXT NOT NULL
) STRICT;

-- Refused requests ("knocks"), one row per (server, actor, activity type). Bounded by
-- federation::knocks (row cap, oldest last_seen evicted first; fields truncated).
-- '' stands for "not known" so that the primary key stays unique.
CREATE TABLE knocks (
    host          TEXT NOT NULL,
    actor         TEXT NOT NULL DEFAULT '',
    activity_type TEXT NOT NULL DEFAULT '',
    count         INTEGER NOT NULL,
    first_seen    TEXT NOT NULL,          -- RFC 3339 UTC, whole seconds: sorts as text
    last_seen     TEXT NOT NULL,
    PRIMARY KEY (host, actor, activity_type)
) STRICT;
CREATE INDEX knocks_last_seen ON knocks (last_seen);
