// Group message receipts. A receipt goes to the sender only (a ReceiptEvent in its devices' inbox queues), never to
// the whole group: delivered when the first device of a member acknowledged the message, read when the member marked
// it read (if its account sends read receipts). The group's status query reads them back for the sender.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { badInput, notFound } from "../errors.ts";
import type { InboxQueue, NewInboxItem } from "../inbox/service.ts";
import { longTransaction } from "../db/transactions.ts";
import { parseGroupEventId } from "./events.ts";

export const MAX_GROUP_RECEIPT_IDS = 500;

export type ReceiptKind = "DELIVERED" | "READ";
export type GroupReceipts = ReturnType<typeof createGroupReceipts>;

/** The group_receipts table is this file's alone; it reads group_messages, group_devices and devices for its joins. */
export function createGroupReceipts(deps: ServiceDeps, inbox: Pick<InboxQueue, "enqueue" | "publish" | "retentionExpiry">) {
  const { prisma } = deps;
  const inTx = longTransaction(prisma);

  /** Records receipts of `userId` for those messages (once per kind) and queues one ReceiptEvent per sender device. */
  async function record(tx: Tx, userId: string, kind: ReceiptKind, groupId: string, seqs: bigint[], at: Date): Promise<NewInboxItem[]> {
    if (!seqs.length) return [];
    const fresh = await tx.$queryRaw<{ seq: bigint; sender: string }[]>`
      INSERT INTO group_receipts (group_id, seq, user_id, kind, at)
      SELECT m.group_id, m.seq, ${userId}::uuid, ${kind}, ${at} FROM group_messages m
      WHERE m.group_id = ${groupId}::uuid AND m.seq = ANY(${seqs}::bigint[]) AND m.kind = 'APPLICATION'
        AND m.refers_to IS NULL AND m.sender_user_id <> ${userId}::uuid
      ON CONFLICT DO NOTHING
      RETURNING seq, (SELECT sender_user_id::text FROM group_messages x WHERE x.group_id = ${groupId}::uuid AND x.seq = group_receipts.seq) AS sender`;
    if (!fresh.length) return [];
    const senders = [...new Set(fresh.map((f) => f.sender))];
    const devices = await tx.device.findMany({ where: { userId: { in: senders }, active: true }, select: { userId: true, deviceId: true } });
    return fresh.flatMap((f) =>
      devices
        .filter((d) => d.userId === f.sender)
        .map((d) => ({
          userId: d.userId,
          deviceId: d.deviceId,
          kind: "receipt",
          conversationId: groupId,
          payload: { userId, kind, at: at.toISOString(), messageId: `g:${groupId}:${f.seq}` },
          expiresAt: inbox.retentionExpiry(at),
        })),
    );
  }

  /** A device acknowledged group events up to these sequence numbers: its user has those messages. */
  async function delivered(device: Actor, acked: Map<string, { from: bigint; to: bigint }>): Promise<void> {
    const at = new Date();
    const deliveries = await inTx(async (tx) => {
      const items: NewInboxItem[] = [];
      for (const [groupId, { from, to }] of acked) {
        const seqs = await tx.$queryRaw<{ seq: bigint }[]>`
          SELECT seq FROM group_messages WHERE group_id = ${groupId}::uuid AND seq > ${from} AND seq <= ${to}
            AND kind = 'APPLICATION' AND sender_user_id <> ${device.userId}::uuid`;
        items.push(...(await record(tx, device.userId, "DELIVERED", groupId, seqs.map((s) => s.seq), at)));
      }
      return inbox.enqueue(tx, items);
    });
    inbox.publish(deliveries);
  }

  /** Read receipts for group message ids ("g:<groupId>:<seq>") this device may see. */
  async function markRead(actor: Actor, messageIds: string[]): Promise<number> {
    if (messageIds.length > MAX_GROUP_RECEIPT_IDS) throw badInput(`at most ${MAX_GROUP_RECEIPT_IDS} message ids per call`);
    const byGroup = new Map<string, bigint[]>();
    for (const id of messageIds) {
      const p = parseGroupEventId(id);
      if (p) (byGroup.get(p.groupId) ?? byGroup.set(p.groupId, []).get(p.groupId)!).push(p.seq);
    }
    const at = new Date();
    let count = 0;
    const deliveries = await inTx(async (tx) => {
      const items: NewInboxItem[] = [];
      for (const [groupId, seqs] of byGroup) {
        const [m] = await tx.$queryRaw<{ from_seq: bigint; until_seq: bigint | null }[]>`
          SELECT from_seq, until_seq FROM group_devices
          WHERE group_id = ${groupId}::uuid AND user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId}`;
        if (!m) continue;
        const visible = seqs.filter((s) => s >= m.from_seq && (m.until_seq === null || s <= m.until_seq));
        const got = await record(tx, actor.userId, "READ", groupId, visible, at);
        count += new Set(got.map((g) => g.payload!.messageId)).size;
        items.push(...got);
      }
      return inbox.enqueue(tx, items);
    });
    inbox.publish(deliveries);
    return count;
  }

  /** Who has a group message (any device acknowledged it) and who read it; the sender only. */
  async function status(actor: Actor, messageId: string) {
    const p = parseGroupEventId(messageId);
    if (!p) throw notFound("no such message");
    const m = await prisma.groupMessage.findUnique({ where: { groupId_seq: { groupId: p.groupId, seq: p.seq } } });
    if (!m || m.senderUserId !== actor.userId || m.kind !== "APPLICATION") throw notFound("no such message");
    const rows = await prisma.groupReceipt.findMany({ where: { groupId: p.groupId, seq: p.seq }, orderBy: { at: "asc" } });
    const of = (kind: ReceiptKind) => rows.filter((r) => r.kind === kind).map((r) => ({ userId: r.userId, at: r.at }));
    return { messageId, deliveredTo: of("DELIVERED"), readBy: of("READ") };
  }

  /** A message deleted for everyone takes its receipts along. */
  async function forget(tx: Tx, groupId: string, seq: bigint): Promise<void> {
    await tx.groupReceipt.deleteMany({ where: { groupId, seq } });
  }

  /** Retention deleted these group messages: their receipts go in the same transaction. */
  async function forgetAll(tx: Tx, messages: { groupId: string; seq: bigint }[]): Promise<void> {
    if (!messages.length) return;
    await tx.$executeRaw`
      DELETE FROM group_receipts r USING unnest(${messages.map((m) => m.groupId)}::uuid[], ${messages.map((m) => m.seq)}::bigint[]) AS k(group_id, seq)
      WHERE r.group_id = k.group_id AND r.seq = k.seq`;
  }

  return { delivered, markRead, status, forget, forgetAll };
}
