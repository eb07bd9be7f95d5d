-- Issue 15: what `hortus export` needs to know which documents a change touches, kept by the
-- database in the writer's transaction, so that an export reads one narrow row per post
-- instead of reading and hashing every post's row and every interaction (`export::deps`).
--
-- `row_v` moves whenever the post's row does, or how one of its mentions resolves (the
-- owner's page links `@user@host` to the newest known actor with that handle): everything a
-- listing, the sitemap or the outbox shows of it. `talk_v` moves whenever what others did with
-- it does: a like or boost, its reply setting, a reply in its thread or a quote of it, or the
-- name, handle or URL of such a reply's author. The values are random, not counted: a database
-- restored from a backup and edited again never repeats a version an export has seen.
-- `links`: the post answers or quotes another (its page and replies then show on that one's).
CREATE TABLE post_versions (
    post_id INTEGER PRIMARY KEY,
    row_v   INTEGER NOT NULL,
    talk_v  INTEGER NOT NULL,
    links   INTEGER NOT NULL
) STRICT;
INSERT INTO post_versions (post_id, row_v, talk_v, links)
    SELECT id, random(), random(), in_reply_to IS NOT NULL OR quote IS NOT NULL FROM posts;

-- Who each post mentions, by lower-case handle (as `actors::id_by_handle` compares them), so a
-- change to a known actor moves only the versions of the posts that mention it.
CREATE TABLE post_mentions (
    handle  TEXT NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (handle, post_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX post_mentions_post ON post_mentions (post_id);
-- As `export::deps` reads a post's mentions: the `name` of each object of a JSON array, its
-- leading `@`s removed. Anything else (malformed JSON, other shapes) mentions no one.
INSERT OR IGNORE INTO post_mentions (handle, post_id)
    SELECT lower(ltrim(json_extract(m.value, '$.name'), '@')), p.id
    FROM posts p, json_each(CASE WHEN json_valid(p.mentions) AND json_type(p.mentions) = 'array'
                                 THEN p.mentions ELSE '[]' END) m
    WHERE m.type = 'object' AND json_type(m.value, '$.name') = 'text';

CREATE TRIGGER export_versions_posts_insert AFTER INSERT ON posts
BEGIN
    INSERT OR REPLACE INTO post_versions (post_id, row_v, talk_v, links)
        VALUES (NEW.id, random(), random(), NEW.in_reply_to IS NOT NULL OR NEW.quote IS NOT NULL);
    INSERT OR IGNORE INTO post_mentions (handle, post_id)
        SELECT lower(ltrim(json_extract(m.value, '$.name'), '@')), NEW.id
        FROM json_each(CASE WHEN json_valid(NEW.mentions) AND json_type(NEW.mentions) = 'array'
                            THEN NEW.mentions ELSE '[]' END) m
        WHERE m.type = 'object' AND json_type(m.value, '$.name') = 'text';
END;
-- Any update, whatever the column: a column added later is covered without a change here.
CREATE TRIGGER export_versions_posts_update AFTER UPDATE ON posts
BEGIN
    INSERT OR REPLACE INTO post_versions (post_id, row_v, talk_v, links)
        VALUES (NEW.id, random(), random(), NEW.in_reply_to IS NOT NULL OR NEW.quote IS NOT NULL);
    DELETE FROM post_versions WHERE post_id = OLD.id AND OLD.id IS NOT NEW.id;
    DELETE FROM post_mentions WHERE post_id IN (OLD.id, NEW.id);
    INSERT OR IGNORE INTO post_mentions (handle, post_id)
        SELECT lower(ltrim(json_extract(m.value, '$.name'), '@')), NEW.id
        FROM json_each(CASE WHEN json_valid(NEW.mentions) AND json_type(NEW.mentions) = 'array'
                            THEN NEW.mentions ELSE '[]' END) m
        WHERE m.type = 'object' AND json_type(m.value, '$.name') = 'text';
END;
CREATE TRIGGER export_versions_posts_delete AFTER DELETE ON posts
BEGIN
    DELETE FROM post_versions WHERE post_id = OLD.id;
    DELETE FROM post_mentions WHERE post_id = OLD.id;
END;

-- How a mention resolves: any write to an actor with a mentioned handle (its id, type, or
-- `fetched_at`, which orders actors sharing a handle).
CREATE TRIGGER export_versions_mentioned_insert AFTER INSERT ON remote_actors
WHEN NEW.handle IS NOT NULL
BEGIN
    UPDATE post_versions SET row_v = random()
    WHERE post_id IN (SELECT post_id FROM post_mentions WHERE handle = lower(NEW.handle));
END;
CREATE TRIGGER export_versions_mentioned_update AFTER UPDATE ON remote_actors
WHEN OLD.handle IS NOT NULL OR NEW.handle IS NOT NULL
BEGIN
    UPDATE post_versions SET row_v = random()
    WHERE post_id IN (SELECT post_id FROM post_mentions
                      WHERE handle IN (lower(OLD.handle), lower(NEW.handle)));
END;
CREATE TRIGGER export_versions_mentioned_delete AFTER DELETE ON remote_actors
WHEN OLD.handle IS NOT NULL
BEGIN
    UPDATE post_versions SET row_v = random()
    WHERE post_id IN (SELECT post_id FROM post_mentions WHERE handle = lower(OLD.handle));
END;

-- What the page shows of a reply's or a quote's author: its name, handle and URL.
CREATE TRIGGER export_versions_author_insert AFTER INSERT ON remote_actors
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (SELECT thread_post_id FROM remote_notes WHERE actor_id = NEW.id
                      UNION SELECT quote_post_id FROM remote_notes WHERE actor_id = NEW.id);
END;
CREATE TRIGGER export_versions_author_update AFTER UPDATE ON remote_actors
WHEN OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.handle IS NOT NEW.handle
    OR OLD.url IS NOT NEW.url
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (SELECT thread_post_id FROM remote_notes WHERE actor_id IN (OLD.id, NEW.id)
                      UNION SELECT quote_post_id FROM remote_notes
                      WHERE actor_id IN (OLD.id, NEW.id));
END;
CREATE TRIGGER export_versions_author_delete AFTER DELETE ON remote_actors
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (SELECT thread_post_id FROM remote_notes WHERE actor_id = OLD.id
                      UNION SELECT quote_post_id FROM remote_notes WHERE actor_id = OLD.id);
END;

-- Replies in a post's thread and quotes of it.
CREATE TRIGGER export_versions_notes_insert AFTER INSERT ON remote_notes
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (NEW.thread_post_id, NEW.quote_post_id);
END;
CREATE TRIGGER export_versions_notes_update AFTER UPDATE ON remote_notes
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (OLD.thread_post_id, OLD.quote_post_id, NEW.thread_post_id,
                      NEW.quote_post_id);
END;
CREATE TRIGGER export_versions_notes_delete AFTER DELETE ON remote_notes
BEGIN
    UPDATE post_versions SET talk_v = random()
    WHERE post_id IN (OLD.thread_post_id, OLD.quote_post_id);
END;

-- Likes and boosts.
CREATE TRIGGER export_versions_reactions_insert AFTER INSERT ON reactions
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER export_versions_reactions_update AFTER UPDATE ON reactions
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id IN (OLD.post_id, NEW.post_id);
END;
CREATE TRIGGER export_versions_reactions_delete AFTER DELETE ON reactions
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id = OLD.post_id;
END;

-- A post's own reply setting.
CREATE TRIGGER export_versions_reply_settings_insert AFTER INSERT ON reply_settings_post
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER export_versions_reply_settings_update AFTER UPDATE ON reply_settings_post
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id IN (OLD.post_id, NEW.post_id);
END;
CREATE TRIGGER export_versions_reply_settings_delete AFTER DELETE ON reply_settings_post
BEGIN
    UPDATE post_versions SET talk_v = random() WHERE post_id = OLD.post_id;
END;

-- What an export's plan reads of every post (`export::plan`), without walking the posts'
-- rows: their HTML comes before `visibility` and spills into overflow pages, so the scan read
-- the whole table (36 MB for 10,000 posts) where this index is a few hundred kB.
CREATE INDEX posts_export_plan ON posts (id, slug, visibility, deleted_at, attachments);
