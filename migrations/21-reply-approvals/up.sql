-- GoToSocial's reply approvals (interaction policies; PROTOCOL.md §9): the owner's reply to a
-- post whose `canReply` asks for approval waits for its author's `Accept` — whose `result` (GTS
-- 0.19+; the Accept's own id before) the reply then carries as `approvedBy` — or `Reject`.
-- An Accept of any of the owner's replies from the answered author's server is recorded too
-- (GoToSocial also sends them where its policy approves at once).
CREATE TABLE own_reply_approvals (
    post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    approved_by TEXT,
    updated_at TEXT NOT NULL
) STRICT;

-- The reply's page shows the state: the serving cache must move with it (migration 18).
CREATE TRIGGER page_generation_own_reply_approvals_insert AFTER INSERT ON own_reply_approvals
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_own_reply_approvals_update AFTER UPDATE ON own_reply_approvals
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_own_reply_approvals_delete AFTER DELETE ON own_reply_approvals
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;

-- FEP-044f for posts the owner reads: what a remote post quotes (other than the owner's own
-- posts, which quote_requests covers), and its `quoteAuthorization` stamp once dereferenced on
-- the quoted author's server and found to grant this quote (NULL: none, or not valid).
ALTER TABLE remote_notes ADD COLUMN quoted TEXT;
ALTER TABLE remote_notes ADD COLUMN quote_authorization TEXT;
