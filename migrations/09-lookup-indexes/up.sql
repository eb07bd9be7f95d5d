-- Issue 9.6: every lookup on the inbox path, and per mention, uses an index;
-- src/inbox/query_plans.rs runs EXPLAIN QUERY PLAN on each and fails on a full scan.

-- A reply names its parent by id or by url (Mastodon sends the id, some servers the page):
-- `id = ? OR url = ?` read every remote post for the url half, on every reply received.
CREATE INDEX remote_notes_url ON remote_notes (url) WHERE url IS NOT NULL;

-- Mentions resolve `@user@host` against known actors case-insensitively
-- (`lower(handle) = lower(?)`), once per mention on every publish and follow command.
CREATE INDEX remote_actors_handle ON remote_actors (lower(handle));

-- A Delete of an actor removes its likes and boosts: `DELETE FROM reactions WHERE actor_id = ?`
-- read the whole table (its primary key starts with kind).
CREATE INDEX reactions_actor ON reactions (actor_id);
