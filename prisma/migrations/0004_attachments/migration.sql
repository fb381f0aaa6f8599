-- Attachments: opaque ciphertext blobs under unguessable ids (the blob itself lives in the blob store, not here).
-- Who uploaded a blob is kept only while its upload is open (to let nobody else write to it); completion clears it,
-- so a stored blob is not tied to an account.

CREATE TABLE attachments (
  id                  text PRIMARY KEY,
  size                bigint NOT NULL,
  content_type        text NOT NULL,
  uploader_user_id    uuid,
  uploader_device_id  integer,
  completed_at        timestamptz(3),
  -- Open upload: when it is abandoned. Complete blob: when retention ends. The sweeper deletes past it.
  expires_at          timestamptz(3) NOT NULL,
  -- S3 store only: the multipart upload, the bytes in its uploaded parts, and the bytes held in the tail object.
  multipart_id        text,
  committed_bytes     bigint NOT NULL DEFAULT 0,
  tail_bytes          bigint NOT NULL DEFAULT 0,
  created_at          timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX attachments_expires_idx ON attachments(expires_at);

-- S3 store only: the parts of an open multipart upload. Kept here because ListParts is not implemented by every
-- S3-compatible server (s3rver answers MethodNotAllowed) and resuming on another node must know them.
CREATE TABLE attachment_parts (
  attachment_id  text NOT NULL REFERENCES attachments(id) ON DELETE CASCADE,
  part_number    integer NOT NULL,
  etag           text NOT NULL,
  size           bigint NOT NULL,
  PRIMARY KEY (attachment_id, part_number)
);

-- Per device and UTC day: uploads granted and their bytes. No attachment id here.
CREATE TABLE attachment_quotas (
  user_id    uuid NOT NULL,
  device_id  integer NOT NULL,
  day        date NOT NULL,
  uploads    integer NOT NULL,
  bytes      bigint NOT NULL,
  PRIMARY KEY (user_id, device_id, day),
  FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);
