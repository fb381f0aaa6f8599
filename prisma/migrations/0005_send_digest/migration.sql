-- A digest (SHA-256) of what a send asked for: recipient, type, timer, every envelope and sync copy. A retry with the
-- same clientMessageId is compared with it: the same body gets the first answer, another body CONFLICT. Rows stored
-- before this migration have none and answer as before.
ALTER TABLE messages ADD COLUMN send_digest bytea;
