-- The ids apps know remote posts by (src/api/remote_status.rs, issue 13). Mastodon status ids
-- are integers; the owner's posts keep `posts.id`, so remote posts count from 10^12 up, given
-- on first sight and never reused (AUTOINCREMENT), as `api_accounts` gives account ids. A boost
-- in the home timeline is `2 * 10^12 + timeline_entries.id` and needs no row.
CREATE TABLE api_statuses (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    note_id TEXT NOT NULL UNIQUE           -- remote_notes.id
) STRICT;
INSERT INTO sqlite_sequence (name, seq) VALUES ('api_statuses', 1000000000000);
