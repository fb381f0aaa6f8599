-- Delivered group receipts as ranges: one row per cursor move of a member device (its acknowledgement moved
-- group_devices.acked_seq from after_seq to through_seq at `at`), instead of one group_receipts row per message and
-- member. A 50-member group wrote 49 rows per message; now a member's batch of acknowledgements writes one. A
-- message's delivered-to list is the first range of each device covering its seq (src/groups/receipts-store.ts).
-- DELIVERED rows already in group_receipts stay readable; READ receipts stay there, one per message.
CREATE TABLE "group_deliveries" (
    "group_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "device_id" INTEGER NOT NULL,
    "after_seq" BIGINT NOT NULL,
    "through_seq" BIGINT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "group_deliveries_pkey" PRIMARY KEY ("group_id","user_id","device_id","through_seq"),
    CONSTRAINT "group_deliveries_range_check" CHECK (after_seq < through_seq)
);

-- Retention deletes the ranges up to the messages it deleted (receipts-store.ts forgetAll).
CREATE INDEX "group_deliveries_through_idx" ON "group_deliveries" ("group_id", "through_seq");
