-- Push wake-ups: one registration per device (a browser's Web Push subscription, or a token for a configured
-- gateway), and the wake-ups waiting to be sent. A pending row is the durable promise of one push: any node takes it
-- with FOR UPDATE SKIP LOCKED and a lease, and deletes it only once the push service accepted the push.

-- `woken_at`: when the last wake-up was accepted; cleared when the device connects. While it is recent (within
-- PUSH_COALESCE_SECONDS) new queue items add no push. `window_started_at` / `window_count`: the per-device rate limit.
CREATE TABLE push_registrations (
  user_id           uuid NOT NULL,
  device_id         integer NOT NULL,
  kind              text NOT NULL CHECK (kind IN ('WEB_PUSH', 'GATEWAY')),
  endpoint          text,
  p256dh            bytea,
  auth              bytea,
  gateway           text,
  token             text,
  woken_at          timestamptz(3),
  window_started_at timestamptz(3),
  window_count      integer NOT NULL DEFAULT 0,
  created_at        timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);

-- At most one per device: later queue items fold into it. `lease_until`: a node is sending it until then; a node that
-- died mid-send leaves the lease to run out and another node sends it. `due_at` moves forward on every retry.
CREATE TABLE push_pending (
  user_id     uuid NOT NULL,
  device_id   integer NOT NULL,
  urgent      boolean NOT NULL DEFAULT false,
  due_at      timestamptz(3) NOT NULL,
  lease_until timestamptz(3),
  attempts    integer NOT NULL DEFAULT 0,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, device_id),
  FOREIGN KEY (user_id, device_id) REFERENCES push_registrations(user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX push_pending_due_idx ON push_pending(due_at);
