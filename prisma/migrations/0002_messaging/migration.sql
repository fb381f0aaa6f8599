-- 1:1 conversations, messages with their status, and the durable per-device queue (inbox_items) that carries
-- everything a device must see: envelopes, receipts, deletions, device-list changes (and, later, group events).

-- One row per user pair; user_a <= user_b makes the pair deterministic. Note to Self is user_a = user_b.
CREATE TABLE conversations (
  id              uuid PRIMARY KEY,
  user_a          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  user_b          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at      timestamptz(3) NOT NULL DEFAULT now(),
  last_message_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT conversations_pair_ordered CHECK (user_a <= user_b),
  CONSTRAINT conversations_pair_key UNIQUE (user_a, user_b)
);
CREATE INDEX conversations_user_b_idx ON conversations(user_b);

-- Metadata only: the server never holds a body outside the per-device queue.
CREATE TABLE messages (
  id                uuid PRIMARY KEY,
  seq               bigserial NOT NULL UNIQUE,
  conversation_id   uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  sender_user_id    uuid NOT NULL,
  sender_device_id  integer NOT NULL,
  recipient_user_id uuid NOT NULL,
  client_message_id text NOT NULL,
  message_type      text NOT NULL,
  created_at        timestamptz(3) NOT NULL DEFAULT now(),
  expires_at        timestamptz(3),
  delivered_at      timestamptz(3),
  read_at           timestamptz(3),
  deleted_at        timestamptz(3),
  CONSTRAINT messages_client_id_key UNIQUE (sender_user_id, sender_device_id, client_message_id)
);
CREATE INDEX messages_conversation_seq_idx ON messages(conversation_id, seq);
CREATE INDEX messages_expires_at_idx ON messages(expires_at) WHERE expires_at IS NOT NULL;

-- "Delete for me": the message stays for the other side, hidden from this user's history.
CREATE TABLE hidden_messages (
  message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  user_id    uuid NOT NULL,
  PRIMARY KEY (message_id, user_id)
);

-- The per-device queue. id is the device's order and its cursor; an item leaves only when the device acknowledges it
-- or when it expires (retention, or the message's self-destruct time).
CREATE TABLE inbox_items (
  id               bigserial PRIMARY KEY,
  user_id          uuid NOT NULL,
  device_id        integer NOT NULL,
  kind             text NOT NULL,
  message_id       uuid,
  conversation_id  uuid,
  sender_user_id   uuid,
  sender_device_id integer,
  ciphertext_type  integer,
  body             bytea,
  payload          jsonb,
  created_at       timestamptz(3) NOT NULL DEFAULT now(),
  expires_at       timestamptz(3) NOT NULL,
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX inbox_items_device_idx ON inbox_items(user_id, device_id, id);
CREATE INDEX inbox_items_message_idx ON inbox_items(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX inbox_items_expires_at_idx ON inbox_items(expires_at);
