-- Keys live in the database so that the SQLite file is the whole backup.
CREATE TABLE keys (
    name        TEXT PRIMARY KEY,          -- 'actor' or 'instance'
    private_pem TEXT NOT NULL,
    public_pem  TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

-- One row per post ever published. A deleted post keeps its row (deleted_at set) so its URL
-- answers 410 Gone and its id is never reused for something else.
CREATE TABLE posts (
    id           INTEGER PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    source_path  TEXT NOT NULL,            -- relative to content/, for the owner's error messages
    source_hash  TEXT NOT NULL,            -- sha256 of the file: publish is idempotent
    title        TEXT,
    summary      TEXT,                     -- content warning
    content_html TEXT NOT NULL,            -- sanitised HTML rendered from Markdown
    visibility   TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'followers')),
    language     TEXT,
    in_reply_to  TEXT,
    sensitive    INTEGER NOT NULL DEFAULT 0,
    tags         TEXT NOT NULL DEFAULT '[]',        -- JSON array of hashtag names (no '#')
    mentions     TEXT NOT NULL DEFAULT '[]',        -- JSON array of {name, href}
    attachments  TEXT NOT NULL DEFAULT '[]',        -- JSON array of {url, media_type, alt, width, height}
    published    TEXT NOT NULL,            -- RFC 3339, UTC
    updated      TEXT,                     -- set on every edit
    deleted_at   TEXT
) STRICT;
CREATE INDEX posts_published ON posts (published DESC) WHERE deleted_at IS NULL;

CREATE TABLE post_tags (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,                 -- lower case, for lookups
    PRIMARY KEY (tag, post_id)
) STRICT;

-- Remote actors we know about (followers, accounts we follow, signers).
CREATE TABLE remote_actors (
    id            TEXT PRIMARY KEY,        -- actor IRI
    host          TEXT NOT NULL,
    inbox         TEXT NOT NULL,
    shared_inbox  TEXT,
    handle        TEXT,                    -- user@host when known
    name          TEXT,
    url           TEXT,
    public_key_id TEXT,
    public_key_pem TEXT,
    raw           TEXT NOT NULL,           -- the JSON as fetched
    fetched_at    TEXT NOT NULL
) STRICT;

CREATE TABLE followers (
    actor_id    TEXT PRIMARY KEY REFERENCES remote_actors (id),
    follow_id   TEXT NOT NULL,             -- the Follow activity id, echoed in Accept
    state       TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'suspended')),
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE following (
    actor_id    TEXT PRIMARY KEY REFERENCES remote_actors (id),
    follow_id   TEXT NOT NULL,             -- our Follow activity id
    state       TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected')),
    created_at  TEXT NOT NULL
) STRICT;
