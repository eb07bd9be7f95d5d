-- The client API (issue 13, src/api/): OAuth apps, their tokens, sign-in throttling, media
-- uploaded by apps and what a status create must not do twice. Secrets are never stored: tokens,
-- codes, client secrets and CSRF tokens are kept as SHA-256 hex digests; the password as an
-- argon2id PHC string.

-- The owner's password for signing in to apps (`hortus password`); one row or none.
CREATE TABLE api_password (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    hash    TEXT NOT NULL,                  -- argon2id, PHC string format
    set_at  TEXT NOT NULL
) STRICT;

-- Apps registered with POST /api/v1/apps.
CREATE TABLE api_apps (
    id                 INTEGER PRIMARY KEY,
    client_id          TEXT NOT NULL UNIQUE,
    client_secret_hash TEXT NOT NULL,
    name               TEXT NOT NULL,
    website            TEXT,
    redirect_uris      TEXT NOT NULL,       -- JSON array
    scopes             TEXT NOT NULL,       -- space separated, as registered
    created_at         TEXT NOT NULL
) STRICT;

-- Authorization codes (10 minutes, single use, bound to the PKCE challenge).
CREATE TABLE api_codes (
    code_hash      TEXT PRIMARY KEY,
    app_id         INTEGER NOT NULL REFERENCES api_apps (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT,                    -- base64url SHA-256 of the verifier (S256)
    expires_at     TEXT NOT NULL
) STRICT;
CREATE INDEX api_codes_app ON api_codes (app_id);

-- Access tokens. `owner` = 1: acts for the owner (authorization_code); 0: the app alone
-- (client_credentials).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    app_id       INTEGER NOT NULL REFERENCES api_apps (id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    owner        INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX api_tokens_app ON api_tokens (app_id);

-- One row per failed sign-in, for the throttle (5 per 15 minutes per client address).
CREATE TABLE api_signin_failures (
    id      INTEGER PRIMARY KEY,
    address TEXT NOT NULL,                  -- an IPv4 address or an IPv6 /64
    at      TEXT NOT NULL
) STRICT;
CREATE INDEX api_signin_failures_address ON api_signin_failures (address, at);

-- CSRF tokens the sign-in page handed out (single use, 30 minutes).
CREATE TABLE api_csrf (
    token_hash TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
) STRICT;

-- Images uploaded with POST /api/v2/media, under media/; `post_slug` once a status uses one.
CREATE TABLE api_media (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,       -- relative to the site, e.g. media/api/….png
    media_type  TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    description TEXT NOT NULL DEFAULT '',
    post_slug   TEXT,
    created_at  TEXT NOT NULL
) STRICT;

-- Idempotency-Key of a status create → the post it made (kept a day, as Mastodon does).
CREATE TABLE api_idempotency (
    key        TEXT PRIMARY KEY,
    slug       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- Reading positions apps save (GET/POST /api/v1/markers).
CREATE TABLE api_markers (
    timeline     TEXT PRIMARY KEY,          -- home | notifications
    last_read_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

-- The ids apps know remote accounts by (Mastodon ids are strings of digits): given on first
-- sight, never reused. 1 is the owner's, so the sequence starts after it.
CREATE TABLE api_accounts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id TEXT NOT NULL UNIQUE
) STRICT;
INSERT INTO sqlite_sequence (name, seq) VALUES ('api_accounts', 1);

-- The ids of notifications (what `hortus inbox` lists), given in the order things happened,
-- and which ones the owner dismissed from an app.
CREATE TABLE api_notifications (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT NOT NULL UNIQUE,         -- kind, actor and what it is about
    dismissed INTEGER NOT NULL DEFAULT 0
) STRICT;
