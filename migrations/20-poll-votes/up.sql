-- The owner's votes in polls from other servers (src/api/polls.rs, issue 13): one row per
-- option chosen, with the Create(Note) that carried it. A vote is final, as on Mastodon.
CREATE TABLE api_poll_votes (
    note_id     TEXT NOT NULL,             -- remote_notes.id of the Question
    choice      INTEGER NOT NULL,          -- the option's index, as apps send it
    activity_id TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (note_id, choice)
) STRICT;
