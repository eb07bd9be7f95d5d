-- A number that moves, in the same transaction, whenever anything a public page or document
-- shows changes: the serving cache (`web::cache`) keeps rendered bytes until it moves. The
-- tables below are every table a cached page reads (posts and tags; the keys the actors show; replies, their authors,
-- likes and boosts, reply settings; followers and following counts; the owner's boosts; account
-- moves; blocks and mutes; the federation lists; quote consent: which quotes of the owner's posts
-- are authorised, and whether the owner's own quotes are pending). The test `web::cache::tests::
-- every_table_is_classified` fails on a table that is neither here nor on its list of tables no
-- page reads, so a new table must be placed. Triggers run in the writer's transaction, so
-- writes by any process (`hortus publish` beside `hortus serve`) move it.
CREATE TABLE page_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO page_generation (id, n) VALUES (1, 0);
CREATE TRIGGER page_generation_posts_insert AFTER INSERT ON posts
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_posts_update AFTER UPDATE ON posts
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_posts_delete AFTER DELETE ON posts
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_post_tags_insert AFTER INSERT ON post_tags
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_post_tags_update AFTER UPDATE ON post_tags
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_post_tags_delete AFTER DELETE ON post_tags
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_notes_insert AFTER INSERT ON remote_notes
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_notes_update AFTER UPDATE ON remote_notes
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_notes_delete AFTER DELETE ON remote_notes
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_actors_insert AFTER INSERT ON remote_actors
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_actors_update AFTER UPDATE ON remote_actors
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_remote_actors_delete AFTER DELETE ON remote_actors
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reactions_insert AFTER INSERT ON reactions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reactions_update AFTER UPDATE ON reactions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reactions_delete AFTER DELETE ON reactions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_post_insert AFTER INSERT ON reply_settings_post
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_post_update AFTER UPDATE ON reply_settings_post
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_post_delete AFTER DELETE ON reply_settings_post
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_site_insert AFTER INSERT ON reply_settings_site
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_site_update AFTER UPDATE ON reply_settings_site
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_settings_site_delete AFTER DELETE ON reply_settings_site
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_targets_insert AFTER INSERT ON reply_targets
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_targets_update AFTER UPDATE ON reply_targets
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_reply_targets_delete AFTER DELETE ON reply_targets
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_moves_insert AFTER INSERT ON account_moves
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_moves_update AFTER UPDATE ON account_moves
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_moves_delete AFTER DELETE ON account_moves
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_relations_insert AFTER INSERT ON account_relations
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_relations_update AFTER UPDATE ON account_relations
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_account_relations_delete AFTER DELETE ON account_relations
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_domains_insert AFTER INSERT ON federation_domains
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_domains_update AFTER UPDATE ON federation_domains
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_domains_delete AFTER DELETE ON federation_domains
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_policy_version_insert AFTER INSERT ON federation_policy_version
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_policy_version_update AFTER UPDATE ON federation_policy_version
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_federation_policy_version_delete AFTER DELETE ON federation_policy_version
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_followers_insert AFTER INSERT ON followers
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_followers_update AFTER UPDATE ON followers
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_followers_delete AFTER DELETE ON followers
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_following_insert AFTER INSERT ON following
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_following_update AFTER UPDATE ON following
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_following_delete AFTER DELETE ON following
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_timeline_actions_insert AFTER INSERT ON timeline_actions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_timeline_actions_update AFTER UPDATE ON timeline_actions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_timeline_actions_delete AFTER DELETE ON timeline_actions
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_keys_insert AFTER INSERT ON keys
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_keys_update AFTER UPDATE ON keys
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_keys_delete AFTER DELETE ON keys
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;

-- Quote consent (migration 17): authorised quotes show under a post; the owner's quote shows
-- "pending" until its answer.
CREATE TRIGGER page_generation_quote_requests_insert AFTER INSERT ON quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_quote_requests_update AFTER UPDATE ON quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_quote_requests_delete AFTER DELETE ON quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_own_quote_requests_insert AFTER INSERT ON own_quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_own_quote_requests_update AFTER UPDATE ON own_quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER page_generation_own_quote_requests_delete AFTER DELETE ON own_quote_requests
BEGIN UPDATE page_generation SET n = n + 1 WHERE id = 1; END;
