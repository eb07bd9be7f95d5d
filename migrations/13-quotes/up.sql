-- The post a post quotes (front matter `quote = "URL"`, issue 12): it federates as a quote in
-- the forms peers read (FEP-044f `quote`, `_misskey_quote`, `quoteUrl`, the `RE:` line), and
-- its author, resolved once into `reply_targets` like the author a reply answers, is mentioned
-- and delivered to.
ALTER TABLE posts ADD COLUMN quote TEXT;
