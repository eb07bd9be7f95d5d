-- The owner's home timeline (src/timeline, issue 12): posts and boosts by the accounts the owner
-- follows, and what the owner did with remote posts (likes, boosts, bookmarks).
--
-- Remote posts are stored once, in remote_notes (migrations/05-conversation), whether they
-- concern the owner or only appear in the timeline; these columns hold what a timeline shows
-- beyond a reply. Counts are what the post's own server says (NULL when it says nothing).
ALTER TABLE remote_notes ADD COLUMN poll TEXT;              -- JSON {options: [{name, votes}], multiple, closed, ends}
ALTER TABLE remote_notes ADD COLUMN replies_count INTEGER;
ALTER TABLE remote_notes ADD COLUMN likes_count INTEGER;
ALTER TABLE remote_notes ADD COLUMN boosts_count INTEGER;

-- One row per thing the timeline shows: a followed account's post, or its boost of a post.
-- `id` orders the timeline (newest first) and is what `hortus timeline --before ID` takes;
-- AUTOINCREMENT so a pruned id is never reused for a newer entry.
CREATE TABLE timeline_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('post', 'boost')),
    -- The stored post (remote_notes.id); NULL for a boost of a post on a server the policy
    -- refuses: such a post is never fetched, only its link is kept.
    note_id     TEXT,
    object_id   TEXT NOT NULL,              -- the post's id as the activity named it
    booster_id  TEXT,                       -- boost: the followed account that boosted it
    activity_id TEXT,                       -- boost: the Announce, which an Undo names
    refused     INTEGER NOT NULL DEFAULT 0 CHECK (refused IN (0, 1)),
    created_at  TEXT NOT NULL               -- when it reached Hortus (RFC 3339, whole seconds)
) STRICT;
CREATE UNIQUE INDEX timeline_entries_post ON timeline_entries (note_id) WHERE kind = 'post';
CREATE UNIQUE INDEX timeline_entries_boost ON timeline_entries (booster_id, object_id) WHERE kind = 'boost';
CREATE INDEX timeline_entries_activity ON timeline_entries (activity_id) WHERE activity_id IS NOT NULL;
CREATE INDEX timeline_entries_note ON timeline_entries (note_id) WHERE note_id IS NOT NULL;
CREATE INDEX timeline_entries_created ON timeline_entries (created_at);

-- What the owner did with a remote post: one like, one boost, one bookmark per post. `activity`
-- is the Like or Announce sent (NULL for a bookmark, which stays local): its Undo embeds it, and
-- the owner's boosts are listed from it in the outbox and on the profile page.
CREATE TABLE timeline_actions (
    kind        TEXT NOT NULL CHECK (kind IN ('like', 'boost', 'bookmark')),
    object_id   TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    activity    TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (kind, object_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX timeline_actions_object ON timeline_actions (object_id);
CREATE INDEX timeline_actions_created ON timeline_actions (kind, created_at);
