-- MLS key packages and groups: the server is the delivery service (RFC 9750). It orders commits and stores each
-- group message once; it never holds group secrets.

-- Uploaded key packages. `ref` is SHA-256 of the TLS-encoded KeyPackage: a commit's Add proposal is matched to a
-- claimed key package by it. A claimed key package is kept (claimed_by set) so the commit that uses it can be checked.
CREATE TABLE key_packages (
  id          bigserial PRIMARY KEY,
  user_id     uuid NOT NULL,
  device_id   integer NOT NULL,
  ref         bytea NOT NULL,
  key_package bytea NOT NULL,
  last_resort boolean NOT NULL DEFAULT false,
  not_after   timestamptz(3) NOT NULL,
  claimed_by  uuid,
  claimed_at  timestamptz(3),
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX key_packages_ref_key ON key_packages(ref);
CREATE INDEX key_packages_available_idx ON key_packages(user_id, device_id, id) WHERE claimed_at IS NULL AND NOT last_resort;
CREATE UNIQUE INDEX key_packages_last_resort_key ON key_packages(user_id, device_id) WHERE last_resort;

-- A group. `epoch` only moves through an accepted commit (conditional on the epoch it was framed at);
-- `last_seq` numbers every stored group event, and the row lock taken to bump it orders them.
-- `group_info` is the latest GroupInfo (with the ratchet tree extension) as an MLSMessage: how the server knows
-- which leaf is which device when the next commit arrives.
CREATE TABLE groups (
  id           uuid PRIMARY KEY,
  mls_group_id bytea NOT NULL,
  name         text,
  description  text,
  epoch        integer NOT NULL DEFAULT 0,
  last_seq     bigint NOT NULL DEFAULT 0,
  group_info   bytea,
  created_by   uuid NOT NULL REFERENCES users(id),
  created_at   timestamptz(3) NOT NULL DEFAULT now(),
  updated_at   timestamptz(3) NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_mls_group_id_key ON groups(mls_group_id);

-- Members are users, with a role.
CREATE TABLE group_members (
  group_id  uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id   uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role      text NOT NULL CHECK (role IN ('admin', 'member')),
  joined_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id_idx ON group_members(user_id);

-- Each member device: what it may see (from_seq .. until_seq, epochs from joined_epoch) and how far it has
-- acknowledged (acked_seq, its cursor). in_tree: the device still has a leaf in the MLS tree (a device that left
-- keeps its leaf until some member commits its removal).
CREATE TABLE group_devices (
  group_id     uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id      uuid NOT NULL,
  device_id    integer NOT NULL,
  joined_epoch integer NOT NULL,
  from_seq     bigint NOT NULL,
  until_seq    bigint,
  acked_seq    bigint NOT NULL,
  in_tree      boolean NOT NULL DEFAULT true,
  PRIMARY KEY (group_id, user_id, device_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX group_devices_device_idx ON group_devices(user_id, device_id);

-- Every group event, stored once per group (not once per member device).
CREATE TABLE group_messages (
  group_id         uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  seq              bigint NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('COMMIT', 'WELCOME', 'APPLICATION', 'MEMBERS_CHANGED', 'INFO_CHANGED')),
  epoch            integer NOT NULL,
  sender_user_id   uuid,
  sender_device_id integer,
  message          bytea,
  created_at       timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, seq)
);
