// 1:1 messages: sending ciphertext to every device of a user (and sync copies to the sender's other devices) with
// Signal-Server's device-set checks, delivery and read status, deletion, self-destruct, and the conversation list.
// Bodies are opaque: they are stored in the recipients' queues (through the inbox's InboxQueue port), never parsed.
import { randomUUID } from "node:crypto";
import { badInput, notFound } from "../errors.ts";
import { Batcher, type Settled, batchesInFlight } from "../live/batcher.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import type { EnvelopeCopy, InboxQueue, LiveCopy, NewInboxItem } from "../inbox/service.ts";
import {
  MAX_MESSAGE_IDS,
  checkDeleteForEveryone,
  checkRecipients,
  conversationCursor,
  metadataCutoffs,
  pair,
  prepareSend,
  replayAnswer,
  selfDestructAt,
  sendDigest,
  type ConversationInfo,
  type MessageInfo,
  type Page,
  type SendMessageInput,
  type SendRequest,
  type SendResult,
} from "./rules.ts";
import { createMessagesStore, deliveredOnAck, sentKey, type ChangedMessage, type NewMessage, type StoredSend } from "./store.ts";

export * from "./rules.ts";

/** Groups take part in conversations: a group id works wherever a conversation id is asked. */
export interface GroupConversations {
  isMember(userId: string, groupId: string): Promise<boolean>;
  history(actor: Actor, groupId: string, page: Page): Promise<MessageInfo[]>;
}

/**
 * Consent (src/consent/): told of the sends that were taken (stored, found stored, or published live): only those
 * accept their recipient, so a send refused by its device-set check makes no contact. Which pairs' recipient blocked
 * the sender is read with the batch's devices (READ_FOR_SENDS, with the consent domain's SQL): those sends are stored
 * and answered as usual, with copies for the sender's own devices only.
 */
export interface SendConsent {
  sent(pairs: { from: string; to: string }[]): Promise<void>;
}

/** What messages ask the accounts domain: active devices (in the caller's transaction) and the read-receipt setting. */
export interface MessageAccounts {
  activeDevices(tx: Tx, userIds: string[]): Promise<{ userId: string; deviceId: number }[]>;
  readReceiptsEnabled(userId: string): Promise<boolean>;
  setReadReceipts(userId: string, enabled: boolean): Promise<void>;
}

export type MessagesService = ReturnType<typeof createMessagesService>;

export function createMessagesService(
  deps: ServiceDeps,
  ports: { queue: InboxQueue; groups: GroupConversations; accounts: MessageAccounts; consent?: SendConsent },
) {
  const { config } = deps;
  const { queue, groups, accounts } = ports;
  const consent = ports.consent ?? { sent: async () => {} };
  const pairsOf = (reqs: SendRequest[]) => reqs.map((r) => ({ from: r.actor.userId, to: r.recipient }));
  // The send is already taken: a failure to record the contact must not turn it into an error (a retry replays it,
  // and a replay records the contact again).
  const taken = (reqs: SendRequest[]) =>
    consent.sent(pairsOf(reqs)).catch((err) => deps.logger.warn({ err: (err as Error).message }, "recording contacts failed"));
  const limits = config.messaging;
  const envelopeLimits = { maxDevicesPerUser: config.maxDevicesPerUser, maxEnvelopeBytes: limits.maxEnvelopeBytes };
  const store = createMessagesStore(deps, queue.envelopes);
  const keyOf = (r: SendRequest) => sentKey({ userId: r.actor.userId, deviceId: r.actor.deviceId, clientMessageId: r.clientMessageId });

  /** The message rows and the envelope copies of accepted sends. */
  function rowsOf(sends: { req: SendRequest; messageId: string }[], now: Date, blocked: Set<string>) {
    const messages: NewMessage[] = [];
    const copies: EnvelopeCopy[] = [];
    for (const { req, messageId } of sends) {
      const { actor, recipient } = req;
      const expiresAt = selfDestructAt(now, req.ttl);
      messages.push({
        id: messageId,
        conversation: pair(actor.userId, recipient),
        senderUserId: actor.userId,
        senderDeviceId: actor.deviceId,
        recipientUserId: recipient,
        clientMessageId: req.clientMessageId,
        messageType: req.messageType,
        expiresAt,
        digest: sendDigest(req),
      });
      const retention = { selfDestruct: expiresAt !== null, expiresAt: expiresAt ?? queue.retentionExpiry(now) };
      for (const c of copiesOf(req, messageId, blocked)) copies.push({ ...c, ...retention, urgent: req.messageType === "CALL" });
    }
    return { messages, copies };
  }

  /**
   * Many concurrent sends: one read and one statement for all; each answers after that statement committed. A
   * send raced by a copy of itself (same sender device and client message id) is skipped by the statement.
   */
  async function sendBatch(reqs: SendRequest[]): Promise<Settled<SendResult>[]> {
    const out: Settled<SendResult>[] = new Array(reqs.length);
    const { devices, stored, blocked } = await store.readForSends(
      reqs.flatMap((r) => [r.recipient, r.actor.userId]),
      reqs.map(sentOf),
      pairsOf(reqs),
    );
    const writes: { req: SendRequest; messageId: string; i: number }[] = [];
    reqs.forEach((req, i) => {
      const first = stored.get(keyOf(req));
      try {
        if (first) return void (out[i] = { ok: true, value: replayAnswer(req, first) });
        const own = req.recipient === req.actor.userId ? [] : (devices.get(req.actor.userId) ?? []);
        checkRecipients(req, [...(devices.get(req.recipient) ?? []), ...own]);
        writes.push({ req, messageId: randomUUID(), i });
      } catch (error) {
        out[i] = { ok: false, error };
      }
    });
    const replays = reqs.filter((_, i) => out[i]?.ok);
    if (writes.length === 0) return await taken(replays), out;
    const now = new Date();
    const { messages, copies } = rowsOf(writes, now, blocked);
    let result: Awaited<ReturnType<typeof store.storeSends>>;
    try {
      result = await store.storeSends(messages, copies, now);
    } catch (error) {
      if (writes.length === 1) out[writes[0].i] = { ok: false, error };
      // Nothing of the batch was stored: each send is tried alone and gets its own answer.
      else for (const w of writes) out[w.i] = (await sendBatch([w.req]))[0];
      return await taken(replays), out;
    }
    queue.publish(queue.envelopes.deliveries(copies, result.written, now));
    // Not stored: the same send (a retry, or twice in this batch) was stored first, and its answer is the answer.
    const lost = writes.filter((w) => !result.conversationOf.has(w.messageId));
    const firsts = lost.length > 0 ? (await store.readForSends([], lost.map((w) => sentOf(w.req)))).stored : new Map<string, StoredSend>();
    for (const w of writes) {
      const first = firsts.get(keyOf(w.req));
      out[w.i] = result.conversationOf.has(w.messageId)
        ? { ok: true, value: { messageId: w.messageId, serverTimestamp: now } }
        : first
          ? settle(() => replayAnswer(w.req, first))
          : { ok: false, error: new Error("a send was neither stored nor found stored") };
    }
    await taken([...replays, ...writes.filter((w) => out[w.i].ok).map((w) => w.req)]);
    return out;
  }

  // At most one batch per two pooled connections in flight.
  const sends = new Batcher<SendRequest, SendResult>(sendBatch, {
    maxBatch: 128,
    maxConcurrent: batchesInFlight(config.database, 2),
    maxQueued: config.messaging.sendQueueLimit,
    onBatch: (n) => deps.observeBatch?.("sends", n),
  });

  async function send(actor: Actor, input: SendMessageInput): Promise<SendResult> {
    const req = prepareSend(actor, input, envelopeLimits);
    return req.online ? sendLive(req) : sends.submit(req);
  }

  /**
   * A live-only send: the same device-set checks, then published to whichever of the devices are connected. Nothing
   * is stored, so nothing replays after a reconnect, and a retry is just another send.
   */
  async function sendLive(req: SendRequest): Promise<SendResult> {
    const { actor, recipient } = req;
    const { devices, blocked } = await store.readForSends([recipient, actor.userId], [], pairsOf([req]));
    const own = recipient === actor.userId ? [] : (devices.get(actor.userId) ?? []);
    checkRecipients(req, [...(devices.get(recipient) ?? []), ...own]);
    await taken([req]);
    const at = new Date();
    const messageId = randomUUID();
    queue.publishLive(copiesOf(req, messageId, blocked), at);
    return { messageId, serverTimestamp: at };
  }

  /**
   * One receipt item per device of each sender, listing that sender's messages (the messages of one sender and one
   * reader are one conversation), as the acknowledgement statement coalesces delivered receipts (receiptWrite).
   */
  async function receiptItems(tx: Tx, reader: string, kind: "DELIVERED" | "READ", at: Date, changed: ChangedMessage[]) {
    const bySender = new Map<string, ChangedMessage[]>();
    for (const m of changed) {
      const ms = bySender.get(m.senderUserId);
      if (ms) ms.push(m);
      else bySender.set(m.senderUserId, [m]);
    }
    if (bySender.size === 0) return [];
    const devices = await accounts.activeDevices(tx, [...bySender.keys()]);
    const retention = queue.retentionExpiry(at).getTime();
    const items: NewInboxItem[] = [];
    for (const [sender, ms] of bySender) {
      const expiresAt = new Date(Math.max(...ms.map((m) => m.expiresAt?.getTime() ?? retention)));
      const payload = { userId: reader, kind, at: at.toISOString(), messageIds: ms.map((m) => m.id) };
      for (const d of devices) {
        if (d.userId !== sender) continue;
        items.push({ userId: sender, deviceId: d.deviceId, kind: "receipt", messageId: ms[0].id, conversationId: ms[0].conversationId, payload, expiresAt });
      }
    }
    return items;
  }

  /** Delivered: one of the recipient's devices acknowledged an envelope, in the acknowledging statement. */
  const envelopesAcknowledged = deliveredOnAck(queue.receipts);

  async function setReadReceipts(actor: Actor, enabled: boolean): Promise<boolean> {
    await accounts.setReadReceipts(actor.userId, enabled);
    return enabled;
  }

  /** Marks messages addressed to the caller read. With read receipts off nothing is stored or sent. */
  async function markRead(actor: Actor, messageIds: string[]): Promise<number> {
    if (messageIds.length > MAX_MESSAGE_IDS) throw badInput(`at most ${MAX_MESSAGE_IDS} message ids per call`);
    if (messageIds.length === 0 || !(await accounts.readReceiptsEnabled(actor.userId))) return 0;
    const ids = [...new Set(messageIds)];
    const at = new Date();
    const { count, deliveries } = await deps.prisma.$transaction(async (tx) => {
      const changed = await store.markRead(tx, actor.userId, ids, at);
      return { count: changed.length, deliveries: await queue.enqueue(tx, await receiptItems(tx, actor.userId, "READ", at, changed)) };
    });
    queue.publish(deliveries);
    return count;
  }

  async function deleteMessage(actor: Actor, messageId: string, forEveryone: boolean): Promise<boolean> {
    const now = new Date();
    const m = await store.findVisible(actor, messageId, now);
    if (!m) throw notFound("no such message");
    if (!forEveryone) {
      await store.hide(m.id, actor.userId);
      return true;
    }
    checkDeleteForEveryone(m, actor, now, limits.deleteForEveryoneWindowSeconds);
    const deliveries = await deps.prisma.$transaction(async (tx) => {
      if (!(await store.markDeleted(tx, m.id, now))) return [];
      // Undelivered copies are dropped; devices that already have it are told to remove it.
      await queue.removeEnvelopesOf(tx, m.id);
      const recipients = await accounts.activeDevices(tx, [...new Set([m.recipientUserId, m.senderUserId])]);
      return queue.enqueue(
        tx,
        recipients
          .filter((d) => !(d.userId === actor.userId && d.deviceId === actor.deviceId))
          .map((d) => ({
            userId: d.userId,
            deviceId: d.deviceId,
            kind: "deleted",
            messageId: m.id,
            conversationId: m.conversationId,
            payload: { deletedByUserId: actor.userId },
            expiresAt: m.expiresAt ?? queue.retentionExpiry(now),
          })),
      );
    });
    queue.publish(deliveries);
    return true;
  }

  /**
   * Everyone who talks with `userId` (and its own devices, and `alsoTell`: its group co-members) learns that its
   * device list changed. A deactivated
   * device's queue goes too: nobody can acknowledge it any more.
   */
  async function deviceListChanged(userId: string, alsoTell: string[] = []): Promise<void> {
    const now = new Date();
    const deliveries = await deps.prisma.$transaction(async (tx) => {
      await queue.removeQueuesOfInactiveDevices(tx, userId);
      const targets = await store.devicesOfContacts(tx, userId, alsoTell);
      return queue.enqueue(
        tx,
        targets.map((t) => ({
          userId: t.userId,
          deviceId: t.deviceId,
          kind: "device_list",
          payload: { userId },
          expiresAt: queue.retentionExpiry(now),
        })),
      );
    });
    queue.publish(deliveries);
  }

  async function conversationFor(actor: Actor, conversationId: string): Promise<ConversationInfo> {
    const c = await store.conversationOf(actor.userId, conversationId);
    if (!c) throw notFound("no such conversation");
    return c;
  }

  /** The other user of a 1:1 conversation `userId` takes part in; null for a group or none. */
  async function peerOf(userId: string, conversationId: string): Promise<string | null> {
    const c = await store.conversationOf(userId, conversationId.toLowerCase());
    return c ? (c.userA === userId ? c.userB : c.userA) : null;
  }

  /** What a report records of a message the actor can see (consent's reportMessage). */
  async function reportable(actor: Actor, messageId: string) {
    const m = await store.findVisible(actor, messageId, new Date());
    return m ? { conversationId: m.conversationId, senderUserId: m.senderUserId } : null;
  }

  /** Whether the user takes part in the conversation, or is a member of the group with that id. */
  async function isParticipant(userId: string, conversationId: string): Promise<boolean> {
    return !!(await store.conversationOf(userId, conversationId)) || (await groups.isMember(userId, conversationId));
  }

  /** The users among `others` who share a conversation with `userId` (themselves included). */
  async function contactsAmong(userId: string, others: string[]): Promise<Set<string>> {
    const ids = [...new Set(others)];
    const out = new Set<string>(ids.includes(userId) ? [userId] : []);
    for (const u of await store.contactsAmong(userId, ids)) out.add(u);
    return out;
  }

  /** The caller's conversations, most recently active first. */
  async function conversations(actor: Actor, page: Page): Promise<ConversationInfo[]> {
    return store.conversations(actor.userId, page);
  }

  /**
   * A conversation's messages, newest first; hidden, deleted and expired ones are never served. A group id gives
   * the group's history as the device may see it.
   */
  async function messages(actor: Actor, conversationId: string, page: Page): Promise<MessageInfo[]> {
    if (await groups.isMember(actor.userId, conversationId)) return groups.history(actor, conversationId, page);
    const c = await conversationFor(actor, conversationId);
    return store.messages(actor.userId, c.id, page, new Date());
  }

  /** Deletes self-destructed messages (their queue items go with the inbox sweep). */
  async function sweep(): Promise<number> {
    return store.sweep(new Date());
  }

  /**
   * One batch of metadata retention: rows kept while a copy is queued, then for the retention after their last status
   * change, and never before delete-for-everyone can no longer name them.
   */
  async function purge(now: Date, limit: number): Promise<number> {
    return store.purge(metadataCutoffs(now, limits), now, limit);
  }

  return {
    purge,
    send,
    markRead,
    setReadReceipts,
    readReceiptsEnabled: (userId: string) => accounts.readReceiptsEnabled(userId),
    deleteMessage,
    deviceListChanged,
    envelopesAcknowledged,
    conversationFor,
    peerOf,
    reportable,
    isParticipant,
    contactsAmong,
    conversations,
    conversationCursor,
    messages,
    sweep,
  };
}

/**
 * One copy per envelope of a send: to the recipient's devices (in Note to Self, the sender's), sync copies to the
 * sender's. A recipient who blocked the sender gets none.
 */
function copiesOf(req: SendRequest, messageId: string, blocked: Set<string>): LiveCopy[] {
  const { actor, recipient } = req;
  const copy = (userId: string, e: SendRequest["envelopes"][number]): LiveCopy => ({
    userId,
    deviceId: e.deviceId,
    messageId,
    senderUserId: actor.userId,
    senderDeviceId: actor.deviceId,
    ciphertextType: e.type,
    body: e.body,
  });
  const toRecipient = blocked.has(`${actor.userId}|${recipient}`) ? [] : req.envelopes.map((e) => copy(recipient, e));
  return [...toRecipient, ...req.sync.map((e) => copy(actor.userId, e))];
}

const sentOf = (r: SendRequest) => ({ userId: r.actor.userId, deviceId: r.actor.deviceId, clientMessageId: r.clientMessageId });

function settle<T>(answer: () => T): Settled<T> {
  try {
    return { ok: true, value: answer() };
  } catch (error) {
    return { ok: false, error };
  }
}
