-- Quote posts with consent (FEP-044f, issue 14).
-- Who may quote a post: front matter `quotes`; NULL means the site's `[site] quotes`.
ALTER TABLE posts ADD COLUMN quotes TEXT CHECK (quotes IN ('anyone', 'followers', 'nobody'));

-- QuoteRequests for the owner's posts and how they were answered. An accepted one has a
-- QuoteAuthorization stamp served at /quote-authorizations/<token> (410 once revoked); only
-- quotes with an accepted row count and show under the post.
CREATE TABLE quote_requests (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL UNIQUE,
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    actor_id TEXT NOT NULL,
    actor_inbox TEXT NOT NULL,
    quoting_object TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'revoked')),
    received_at TEXT NOT NULL,
    decided_at TEXT
) STRICT;
CREATE INDEX quote_requests_post ON quote_requests (post_id, state);
CREATE INDEX quote_requests_quoting ON quote_requests (quoting_object, state);

-- The owner's own quotes: the QuoteRequest sent for a post with `quote = "URL"` and the answer.
CREATE TABLE own_quote_requests (
    post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
    request_id TEXT NOT NULL UNIQUE,
    quoted TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'revoked')),
    authorization TEXT,
    updated_at TEXT NOT NULL
) STRICT;

-- The answered or quoted post's `interactionPolicy` as fetched (JSON; NULL: it has none), so
-- `hortus publish` and `hortus reply` can refuse what its author's policy forbids.
ALTER TABLE reply_targets ADD COLUMN interaction_policy TEXT;
