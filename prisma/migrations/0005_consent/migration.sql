-- Consent: who accepted whom (message requests), who blocked whom, reports for operators, and presence privacy.

-- `user_id` accepted `contact_user_id`: wrote to them, or accepted their message request. A first message from
-- someone without the reverse row is a request; the recipient's live state and receipts stay hidden from its sender.
CREATE TABLE consent_contacts (
  user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  contact_user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at      timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, contact_user_id)
);
-- Requests addressed to a user: rows naming them as the contact.
CREATE INDEX consent_contacts_contact_idx ON consent_contacts (contact_user_id, created_at);

CREATE TABLE consent_blocks (
  blocker_user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  blocked_user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at      timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (blocker_user_id, blocked_user_id)
);

-- What a reporter chose to reveal: the message's ids (the server holds no content), a bounded reason and an optional
-- plaintext excerpt the reporter typed or copied. Read by operators only; no GraphQL field serves it.
CREATE TABLE consent_reports (
  id                 uuid PRIMARY KEY,
  reporter_user_id   uuid NOT NULL,
  reporter_device_id integer NOT NULL,
  message_id         uuid NOT NULL,
  conversation_id    uuid,
  sender_user_id     uuid,
  reason             text,
  excerpt            text,
  created_at         timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX consent_reports_sender_idx ON consent_reports (sender_user_id, created_at);

CREATE TABLE consent_settings (
  user_id             uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  presence_visibility text NOT NULL DEFAULT 'CONTACTS' CHECK (presence_visibility IN ('EVERYONE', 'CONTACTS', 'NOBODY'))
);
