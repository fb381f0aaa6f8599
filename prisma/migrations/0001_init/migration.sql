-- Accounts, devices and the Signal key directory.
CREATE TABLE users (
  id            uuid PRIMARY KEY,
  username      text UNIQUE,
  read_receipts boolean NOT NULL DEFAULT true,
  created_at    timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE devices (
  user_id                     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  device_id                   integer NOT NULL,
  name                        text,
  registration_id             integer NOT NULL,
  identity_key                bytea NOT NULL,
  token_hash                  bytea UNIQUE,
  signed_pre_key_id           integer,
  signed_pre_key              bytea,
  signed_pre_key_signature    bytea,
  kyber_last_resort_key_id    integer,
  kyber_last_resort_key       bytea,
  kyber_last_resort_signature bytea,
  active                      boolean NOT NULL DEFAULT true,
  created_at                  timestamptz(3) NOT NULL DEFAULT now(),
  deactivated_at              timestamptz(3),
  PRIMARY KEY (user_id, device_id)
);

CREATE TABLE one_time_pre_keys (
  user_id    uuid NOT NULL,
  device_id  integer NOT NULL,
  key_id     integer NOT NULL,
  public_key bytea NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id, key_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);

CREATE TABLE one_time_kyber_pre_keys (
  user_id    uuid NOT NULL,
  device_id  integer NOT NULL,
  key_id     integer NOT NULL,
  public_key bytea NOT NULL,
  signature  bytea NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id, key_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);

CREATE TABLE device_links (
  token_hash bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at timestamptz(3) NOT NULL,
  used_at    timestamptz(3)
);
CREATE INDEX device_links_user_id_idx ON device_links(user_id);
