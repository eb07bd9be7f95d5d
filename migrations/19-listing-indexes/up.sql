-- Issue 15: listings that read an index in order instead of a table, for `hortus publish` and
-- for the pages an export renders (every page of every listing).

-- A post's tags by post: publish replaces an edited post's tags and removes a deleted one's
-- with `DELETE FROM post_tags WHERE post_id = ?`, which the primary key (tag, post_id) cannot
-- answer, so each read the whole table: publishing 10,000 posts spent most of its time there.
CREATE INDEX post_tags_post ON post_tags (post_id);

-- The outbox (public and unlisted posts) in its order: migration 06's index answers the two
-- visibilities as two ranges, which SQLite then sorted whole for every outbox page.
CREATE INDEX posts_outbox ON posts (published DESC, id DESC)
    WHERE deleted_at IS NULL AND visibility IN ('public', 'unlisted');

-- A tag's page: each tag row carries its post's time and whether the post is public and live,
-- so a tag's listing is one range of an index in order. Before, every tag page walked the
-- public listing and kept the posts with the tag: page 80 of a tag read 8,000 rows.
ALTER TABLE post_tags ADD COLUMN published TEXT NOT NULL DEFAULT '';
ALTER TABLE post_tags ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
UPDATE post_tags SET
    published = (SELECT p.published FROM posts p WHERE p.id = post_tags.post_id),
    public = (SELECT p.visibility = 'public' AND p.deleted_at IS NULL
              FROM posts p WHERE p.id = post_tags.post_id);
CREATE INDEX post_tags_listing ON post_tags (tag, published DESC, post_id DESC) WHERE public = 1;
-- Whoever writes posts, the copies follow (publish inserts tag rows with them).
CREATE TRIGGER post_tags_follow_post AFTER UPDATE OF published, visibility, deleted_at ON posts
BEGIN
    UPDATE post_tags SET published = NEW.published,
        public = (NEW.visibility = 'public' AND NEW.deleted_at IS NULL)
    WHERE post_id = NEW.id;
END;
