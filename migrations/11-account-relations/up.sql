-- Accounts (not whole servers) the owner blocked or muted: `hortus block add user@host`,
-- `hortus mute user@host`. A block hides everything the account says (replies, reactions,
-- timeline posts) from every page, timeline and export, removes its follow both ways and
-- refuses its activities at the inbox. A mute only keeps it out of the owner's timeline and
-- notifications, as Mastodon's mute does. Rows are keyed by actor id, never by a handle or url.
CREATE TABLE account_relations (
    actor_id          TEXT PRIMARY KEY,
    blocked           INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    muted             INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1)),
    -- The Block activity sent to the account's server (only with `[federation] send_blocks`),
    -- so an unblock can Undo it.
    block_activity_id TEXT,
    updated_at        TEXT NOT NULL
) STRICT, WITHOUT ROWID;
