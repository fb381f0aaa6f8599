// Group message receipts. A receipt goes to the sender only (a ReceiptEvent in its devices' inbox queues), never to
// the whole group: delivered when the first device of a member acknowledged the message, read when the member marked
// it read (if its account sends read receipts). The group's status query reads them back for the sender.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { badInput, notFound } from "../errors.ts";
import type { InboxQueue, NewInboxItem } from "../inbox/service.ts";
import { groupEventId, parseGroupEventId } from "./events.ts";
import { createGroupReceiptsStore, deliveredOnCursorMove, type ReceiptKind } from "./receipts-store.ts";
import type { CursorMoveFollowUp } from "./acks.ts";

export const MAX_GROUP_RECEIPT_IDS = 500;

export type { ReceiptKind };

/** The accounts domain's answer to "which devices of these users are active", inside the caller's transaction. */
export interface ActiveDevicesPort {
  activeDevices(tx: Tx, userIds: string[]): Promise<{ userId: string; deviceId: number }[]>;
}
export type GroupReceipts = ReturnType<typeof createGroupReceipts>;

/** The rules of group receipts; their table is receipts-store.ts's, the senders' devices come from accounts. */
export function createGroupReceipts(
  deps: ServiceDeps,
  inbox: Pick<InboxQueue, "enqueue" | "publish" | "publishQueued" | "retentionExpiry" | "receipts">,
  accounts: ActiveDevicesPort,
) {
  const store = createGroupReceiptsStore(deps);
  const inTx = store.transaction;

  /**
   * Records receipts of `userId` for those messages (once per kind): one ReceiptEvent per sender device, listing
   * them. Returns the items and how many messages were recorded for a sender with a device to tell.
   */
  async function record(tx: Tx, userId: string, kind: ReceiptKind, groupId: string, seqs: bigint[], at: Date) {
    if (!seqs.length) return { items: [], told: 0 };
    const fresh = await store.insert(tx, userId, kind, groupId, seqs, at);
    const bySender = new Map<string, string[]>();
    for (const f of [...fresh].sort((a, b) => (a.seq < b.seq ? -1 : 1))) {
      (bySender.get(f.sender) ?? bySender.set(f.sender, []).get(f.sender)!).push(groupEventId(groupId, f.seq));
    }
    const devices = bySender.size ? await accounts.activeDevices(tx, [...bySender.keys()]) : [];
    const items: NewInboxItem[] = devices.map((d) => ({
      userId: d.userId,
      deviceId: d.deviceId,
      kind: "receipt",
      conversationId: groupId,
      payload: { userId, kind, at: at.toISOString(), messageIds: bySender.get(d.userId)! },
      expiresAt: inbox.retentionExpiry(at),
    }));
    const told = new Set(devices.map((d) => d.userId));
    return { items, told: [...told].reduce((n, sender) => n + bySender.get(sender)!.length, 0) };
  }

  /**
   * What a batch of group acknowledgements runs for the cursors that moved (see acks.ts): the mover's user has
   * those messages, recorded once per user, and each sender device gets one ReceiptEvent per reader listing them.
   */
  const cursorMoves: CursorMoveFollowUp = {
    ctes: `${deliveredOnCursorMove}, ${inbox.receipts.groupCte("fresh", "DELIVERED")}`,
    retentionExpiry: (from) => inbox.retentionExpiry(from),
    queued: (items) => inbox.publishQueued(items),
  };

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
        const m = await store.visibleRange(tx, groupId, actor);
        if (!m) continue;
        const visible = seqs.filter((s) => s >= m.from_seq && (m.until_seq === null || s <= m.until_seq));
        const { items: got, told } = await record(tx, actor.userId, "READ", groupId, visible, at);
        count += told;
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
    const m = await store.message(p.groupId, p.seq);
    if (!m || m.senderUserId !== actor.userId || m.kind !== "APPLICATION") throw notFound("no such message");
    // Deleted for everyone: its receipts went with it (forget), the ranges through it say nothing of it.
    if (m.refersTo !== null) return { messageId, deliveredTo: [], readBy: [] };
    const rows = await store.ofMessage(p.groupId, p.seq, actor.userId);
    const of = (kind: ReceiptKind) => rows.filter((r) => r.kind === kind).map((r) => ({ userId: r.user_id, at: r.at }));
    return { messageId, deliveredTo: of("DELIVERED"), readBy: of("READ") };
  }

  /** A message deleted for everyone takes its read receipts along (status answers nothing for it). */
  const forget = (tx: Tx, groupId: string, seq: bigint) => store.forget(tx, groupId, seq);

  /** Retention deleted these group messages: their receipts go in the same transaction. */
  const forgetAll = (tx: Tx, messages: { groupId: string; seq: bigint }[]) => store.forgetAll(tx, messages);

  return { cursorMoves, markRead, status, forget, forgetAll };
}
