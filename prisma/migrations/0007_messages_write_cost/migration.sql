-- What every message costs the database to write and then mark (measured with pg_stat_statements under bench:send).
--
-- A message row is updated soon after it is written (delivered_at on the recipient's acknowledgement, read_at, later
-- deleted_at), and none of those columns is indexed: with room left on its page the new version stays there (a HOT
-- update) and no index is touched. Packed full by the inserts, every update moved the row and added an entry to each
-- of its indexes. A quarter of each new page is kept free for those versions; existing pages keep their layout.
ALTER TABLE messages SET (fillfactor = 75);

-- seq comes from its own sequence and is only ever read with the conversation (messages_conversation_seq_idx): the
-- unique index on it alone was one more entry written per message and read by nothing.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_seq_key;
