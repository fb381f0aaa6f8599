-- Group message receipts (who got / read which group message) and a group's default self-destruct timer.
CREATE TABLE "group_receipts" (
    "group_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "user_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "group_receipts_pkey" PRIMARY KEY ("group_id","seq","user_id","kind")
);

ALTER TABLE "groups" ADD COLUMN "expires_in_seconds" INTEGER;

-- MESSAGE_DELETED events name the deleted message.
ALTER TABLE "group_messages" ADD COLUMN "refers_to" TEXT;
ALTER TABLE "group_messages" DROP CONSTRAINT "group_messages_kind_check";
ALTER TABLE "group_messages" ADD CONSTRAINT "group_messages_kind_check"
  CHECK (kind IN ('COMMIT', 'WELCOME', 'APPLICATION', 'MEMBERS_CHANGED', 'INFO_CHANGED', 'MESSAGE_DELETED'));
