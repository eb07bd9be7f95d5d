-- A key id names one actor on its own server (issue 9): the inbox finds the signer by key id,
-- so a key id stored for two actors, or for an actor on another server, would let one server
-- sign as another. Such rows lose their key (it is fetched again, from its own server, the next
-- time it signs something) before the index makes the rule hold for every writer.
UPDATE remote_actors SET public_key_id = NULL, public_key_pem = NULL
 WHERE public_key_id IS NOT NULL
   AND (public_key_id IN (SELECT public_key_id FROM remote_actors
                           WHERE public_key_id IS NOT NULL
                           GROUP BY public_key_id HAVING COUNT(*) > 1)
        OR (public_key_id NOT LIKE 'https://' || host || '/%'
            AND public_key_id NOT LIKE 'https://' || host || '#%'
            AND public_key_id NOT LIKE 'http://' || host || '/%'
            AND public_key_id NOT LIKE 'http://' || host || '#%'));

CREATE UNIQUE INDEX remote_actors_public_key_id ON remote_actors (public_key_id)
 WHERE public_key_id IS NOT NULL;
