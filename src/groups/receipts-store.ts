// The group_receipts and group_deliveries tables' store: the only code that reads or writes them (SQL and Prisma).
// It reads the groups domain's own group_messages and group_devices for its joins; receipts.ts holds the rules and
// asks this module. Read receipts are a group_receipts row per message and member; delivered ones a
// group_deliveries range per cursor move (what one acknowledgement batch moved for a device).
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { longTransaction } from "../db/transactions.ts";
import { Prisma } from "../generated/prisma/client.ts";

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

  /**
   * Who has the message of `senderUserId` and who read it, each user once at its earliest: delivered is the first
   * range of each of the group's devices reaching the seq, when it starts before it (and DELIVERED rows written before
   * migration 0006); read is group_receipts'. One index probe per device of the group.
   */
  const ofMessage = (groupId: string, seq: bigint, senderUserId: string) =>
    prisma.$queryRaw<{ user_id: string; kind: ReceiptKind; at: Date }[]>`
      SELECT user_id::text, kind, min(at) AS at FROM (
        SELECT d.user_id, 'DELIVERED' AS kind, r.at FROM group_devices d CROSS JOIN LATERAL (
          SELECT r.after_seq, r.at FROM group_deliveries r
          WHERE r.group_id = d.group_id AND r.user_id = d.user_id AND r.device_id = d.device_id AND r.through_seq >= ${seq}
          ORDER BY r.through_seq LIMIT 1
        ) r
        WHERE d.group_id = ${groupId}::uuid AND d.user_id <> ${senderUserId}::uuid AND r.after_seq < ${seq}
        UNION ALL
        SELECT user_id, kind, at FROM group_receipts WHERE group_id = ${groupId}::uuid AND seq = ${seq}
      ) x GROUP BY user_id, kind ORDER BY min(at), user_id`;

  async function forget(tx: Tx, groupId: string, seq: bigint): Promise<void> {
    await tx.groupReceipt.deleteMany({ where: { groupId, seq } });
  }

  /**
   * The receipts of these messages (retention deleted them in this transaction): their rows, and the ranges up to
   * them that no longer hold one of others' application messages (one may still hold a later, or a kept earlier,
   * message).
   */
  async function forgetAll(tx: Tx, messages: { groupId: string; seq: bigint }[]): Promise<void> {
    if (!messages.length) return;
    const groupIds = messages.map((m) => m.groupId);
    const seqs = messages.map((m) => m.seq);
    await tx.$executeRaw`
      DELETE FROM group_receipts r USING unnest(${groupIds}::uuid[], ${seqs}::bigint[]) AS k(group_id, seq)
      WHERE r.group_id = k.group_id AND r.seq = k.seq`;
    await tx.$executeRaw`
      DELETE FROM group_deliveries r USING (
        SELECT group_id, max(seq) AS seq FROM unnest(${groupIds}::uuid[], ${seqs}::bigint[]) AS k(group_id, seq) GROUP BY group_id
      ) k
      WHERE r.group_id = k.group_id AND r.through_seq <= k.seq AND NOT EXISTS (${Prisma.raw(othersMessage("r.after_seq", "r.through_seq", "r"))})`;
  }

  return { transaction, insert, visibleRange, message, ofMessage, forget, forgetAll };
}

/** SQL: an application message of someone other than `of`.user_id in `of`.group_id, with after < seq <= through. */
const othersMessage = (after: string, through: string, of: string) => `
  SELECT 1 FROM group_messages m
  WHERE m.group_id = ${of}.group_id AND m.seq > ${after} AND m.seq <= ${through} AND m.kind = 'APPLICATION'
    AND m.sender_user_id <> ${of}.user_id`;

/**
 * The receipts part of a group acknowledgement statement (cursor-store.ts ackStatement). Each cursor that moved
 * (CTE `moved`) is recorded as one range in group_deliveries, the delivered receipts of every message in it, capped
 * at what the device could have had (its until_seq and the group's last event: a cursor moved past them claims
 * nothing); a range holding none of others' application messages (commits, the device's own) is not kept. The CTE
 * `fresh` (group_id, seq, sender_user_id, reader_user_id) holds others' application messages the mover's user has
 * now and had on none of its other devices before (`old`: each device's seen span [from_seq, acked_seq]), once per
 * user, for the senders' receipt rows. The cap reads group_messages, not groups.last_seq: every send batch updates
 * that row, and walking its versions cost more than the rest of the statement.
 */
export const deliveredOnCursorMove = `
spans AS MATERIALIZED (
  SELECT mv.group_id, mv.user_id, mv.device_id, mv.from_seq, (
    SELECT max(m.seq) FROM group_messages m
    WHERE m.group_id = mv.group_id AND m.seq <= LEAST(mv.to_seq, COALESCE(mv.until_seq, mv.to_seq))
  ) AS through_seq
  FROM moved mv
), others AS MATERIALIZED (
  SELECT group_id, user_id, from_seq, seen_seq FROM (
    SELECT o.group_id, o.user_id, o.from_seq, LEAST(o.acked_seq, COALESCE(o.until_seq, o.acked_seq)) AS seen_seq,
           count(*) OVER (PARTITION BY o.group_id, o.user_id) AS devices
    FROM old o
  ) x WHERE devices > 1
), recorded AS (
  INSERT INTO group_deliveries (group_id, user_id, device_id, after_seq, through_seq, at)
  SELECT s.group_id, s.user_id, s.device_id, s.from_seq, s.through_seq, $1::timestamptz FROM spans s
  WHERE s.through_seq > s.from_seq AND EXISTS (${othersMessage("s.from_seq", "s.through_seq", "s")})
  ORDER BY 1, 2, 3
  -- A device added again may reach a seq where a range of its earlier membership ended: that range stands.
  ON CONFLICT DO NOTHING
), fresh AS (
  SELECT DISTINCT s.group_id, m.seq, m.sender_user_id, s.user_id AS reader_user_id
  FROM spans s JOIN group_messages m ON m.group_id = s.group_id AND m.seq > s.from_seq AND m.seq <= s.through_seq
  WHERE m.kind = 'APPLICATION' AND m.refers_to IS NULL AND m.sender_user_id <> s.user_id
    AND NOT EXISTS (
      SELECT 1 FROM others o WHERE o.group_id = s.group_id AND o.user_id = s.user_id AND m.seq BETWEEN o.from_seq AND o.seen_seq)
)`;
