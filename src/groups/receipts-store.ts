// The group_receipts table's store: the only code that reads or writes it (SQL and Prisma). It reads the groups
// domain's own group_messages and group_devices for its joins; receipts.ts holds the rules and asks this module.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { longTransaction } from "../db/transactions.ts";

export type ReceiptKind = "DELIVERED" | "READ";
export type GroupReceiptsStore = ReturnType<typeof createGroupReceiptsStore>;

export function createGroupReceiptsStore({ prisma }: Pick<ServiceDeps, "prisma">) {
  /** Interactive transactions with room for a large batch of receipts (see longTransaction). */
  const transaction = longTransaction(prisma);

  /** Inserts `userId`'s receipts for those messages (once per kind); the fresh ones with their senders. */
  function insert(tx: Tx, userId: string, kind: ReceiptKind, groupId: string, seqs: bigint[], at: Date) {
    return tx.$queryRaw<{ seq: bigint; sender: string }[]>`
      INSERT INTO group_receipts (group_id, seq, user_id, kind, at)
      SELECT m.group_id, m.seq, ${userId}::uuid, ${kind}, ${at} FROM group_messages m
      WHERE m.group_id = ${groupId}::uuid AND m.seq = ANY(${seqs}::bigint[]) AND m.kind = 'APPLICATION'
        AND m.refers_to IS NULL AND m.sender_user_id <> ${userId}::uuid
      ON CONFLICT DO NOTHING
      RETURNING seq, (SELECT sender_user_id::text FROM group_messages x WHERE x.group_id = ${groupId}::uuid AND x.seq = group_receipts.seq) AS sender`;
  }

  /** The range of the group the device may see, or undefined when it never was in it. */
  async function visibleRange(tx: Tx, groupId: string, actor: Actor) {
    const [m] = await tx.$queryRaw<{ from_seq: bigint; until_seq: bigint | null }[]>`
          SELECT from_seq, until_seq FROM group_devices
          WHERE group_id = ${groupId}::uuid AND user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId}`;
    return m;
  }

  const message = (groupId: string, seq: bigint) => prisma.groupMessage.findUnique({ where: { groupId_seq: { groupId, seq } } });

  const ofMessage = (groupId: string, seq: bigint) =>
    prisma.groupReceipt.findMany({ where: { groupId, seq }, orderBy: { at: "asc" } });

  async function forget(tx: Tx, groupId: string, seq: bigint): Promise<void> {
    await tx.groupReceipt.deleteMany({ where: { groupId, seq } });
  }

  /** The receipts of these messages (retention deleted them in this transaction). */
  async function forgetAll(tx: Tx, messages: { groupId: string; seq: bigint }[]): Promise<void> {
    if (!messages.length) return;
    await tx.$executeRaw`
      DELETE FROM group_receipts r USING unnest(${messages.map((m) => m.groupId)}::uuid[], ${messages.map((m) => m.seq)}::bigint[]) AS k(group_id, seq)
      WHERE r.group_id = k.group_id AND r.seq = k.seq`;
  }

  return { transaction, insert, visibleRange, message, ofMessage, forget, forgetAll };
}

/**
 * The receipts part of a group acknowledgement statement (cursor-store.ts ackStatement): for the CTE `moved`
 * (group_id, user_id, from_seq, to_seq: cursors that moved), others' application messages in (from, to] are
 * delivered to the mover's user, recorded once per user (the first of its devices), and the CTE `fresh` (group_id,
 * seq, sender_user_id, reader_user_id) holds the ones recorded now, for the senders' receipt rows.
 */
export const deliveredOnCursorMove = `
got AS (
  SELECT DISTINCT mv.group_id, m.seq, m.sender_user_id, mv.user_id AS reader_user_id
  FROM moved mv JOIN group_messages m ON m.group_id = mv.group_id AND m.seq > mv.from_seq AND m.seq <= mv.to_seq
  WHERE m.kind = 'APPLICATION' AND m.refers_to IS NULL AND m.sender_user_id <> mv.user_id
), recorded AS (
  INSERT INTO group_receipts (group_id, seq, user_id, kind, at)
  SELECT group_id, seq, reader_user_id, 'DELIVERED', $1::timestamptz FROM got ORDER BY group_id, seq, reader_user_id
  ON CONFLICT DO NOTHING
  RETURNING group_id, seq, user_id
), fresh AS (
  SELECT r.group_id, r.seq, m.sender_user_id, r.user_id AS reader_user_id
  FROM recorded r JOIN group_messages m ON m.group_id = r.group_id AND m.seq = r.seq
)`;
