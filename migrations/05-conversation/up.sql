-- Conversations (src/conversation): what other servers say about the owner's posts. Only
-- activities that passed the verified inbox reach these tables. Times are RFC 3339 UTC strings
-- in whole seconds, so they sort as text.

-- Remote posts that concern the owner: replies in a thread under one of our posts, mentions of
-- our actor, and quotes of our posts. One row per object id; edits overwrite it, a Delete leaves
-- a tombstone (deleted_at set, content and raw cleared) so a late or replayed Create cannot bring
-- the post back.
CREATE TABLE remote_notes (
    id             TEXT PRIMARY KEY,           -- the object's id (IRI)
    actor_id       TEXT NOT NULL,              -- attributedTo; always the actor that sent it
    host           TEXT NOT NULL,              -- host[:port] of actor_id
    object_type    TEXT NOT NULL,              -- Note, Article, Page, Question
    in_reply_to    TEXT,                       -- the object it answers, as the peer wrote it
    thread_post_id INTEGER REFERENCES posts (id), -- our post at the root of its thread, if any
    quote_post_id  INTEGER REFERENCES posts (id), -- our post it quotes, if any
    mentions_owner INTEGER NOT NULL DEFAULT 0 CHECK (mentions_owner IN (0, 1)),
    visibility     TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    url            TEXT,                       -- its page (http or https only)
    summary        TEXT,                       -- content warning, plain text (escaped when shown)
    content_html   TEXT NOT NULL,              -- sanitised by conversation::sanitize before storing
    attachments    TEXT NOT NULL DEFAULT '[]', -- JSON [{url, media_type, name}]: shown as links only
    published      TEXT NOT NULL,
    updated        TEXT,
    hidden         INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)), -- the owner hid it
    deleted_at     TEXT,
    raw            TEXT NOT NULL,              -- the object as received (the Delete, once deleted)
    received_at    TEXT NOT NULL
) STRICT;
CREATE INDEX remote_notes_thread ON remote_notes (thread_post_id, published) WHERE thread_post_id IS NOT NULL;
CREATE INDEX remote_notes_quote ON remote_notes (quote_post_id) WHERE quote_post_id IS NOT NULL;
CREATE INDEX remote_notes_in_reply_to ON remote_notes (in_reply_to);
CREATE INDEX remote_notes_actor ON remote_notes (actor_id);
CREATE INDEX remote_notes_received ON remote_notes (received_at);

-- Likes and boosts (Announce) of our posts: one per (kind, actor, post), whatever the activity
-- id, so a repeated Like counts once. `activity_id` is what an Undo names.
CREATE TABLE reactions (
    kind        TEXT NOT NULL CHECK (kind IN ('like', 'boost')),
    actor_id    TEXT NOT NULL,
    post_id     INTEGER NOT NULL REFERENCES posts (id),
    activity_id TEXT NOT NULL,
    raw         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (kind, actor_id, post_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX reactions_activity ON reactions (activity_id);
CREATE INDEX reactions_post ON reactions (post_id, kind);
CREATE INDEX reactions_created ON reactions (created_at);

-- The owner's choices about replies: off for one post, or off everywhere (the one row of
-- reply_settings_site). Stored replies are kept either way; they are only not shown.
CREATE TABLE reply_settings_post (
    post_id     INTEGER PRIMARY KEY REFERENCES posts (id),
    replies_off INTEGER NOT NULL CHECK (replies_off IN (0, 1))
) STRICT;
CREATE TABLE reply_settings_site (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    replies_off INTEGER NOT NULL CHECK (replies_off IN (0, 1))
) STRICT;
INSERT INTO reply_settings_site (id, replies_off) VALUES (1, 0);

-- The author of what a post's `in_reply_to` names, resolved once: the reply mentions them and
-- is delivered to them. `url` is the front matter's value; `object_id` the object it led to.
CREATE TABLE reply_targets (
    url         TEXT PRIMARY KEY,
    object_id   TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    resolved_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Accounts that moved: inbound Moves of followers (old → new), and the owner's own moves
-- (old = our actor). Kept for `hortus inbox` and as a record.
CREATE TABLE account_moves (
    old_actor   TEXT NOT NULL,
    new_actor   TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    outcome     TEXT NOT NULL,     -- what Hortus did, in words, for the owner
    created_at  TEXT NOT NULL,
    PRIMARY KEY (old_actor, new_actor)
) STRICT, WITHOUT ROWID;
