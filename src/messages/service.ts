// 1:1 messages: sending ciphertext to every device of a user (and sync copies to the sender's other devices) with
// Signal-Server's device-set checks, delivery and read status, deletion, self-destruct, and the conversation list.
// Bodies are opaque: they are stored in the recipients' queues (src/inbox/service.ts) and never parsed.
import { randomUUID } from "node:crypto";
import { AppError, badInput, forbidden, notFound } from "../errors.ts";
import type { InboxItem, Prisma } from "../generated/prisma/client.ts";
import { Batcher, type Settled } from "../live/batcher.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { shape, type Delivery, type InboxService, type NewInboxItem } from "../inbox/service.ts";
import { coalescedReceipts, type AckFollowUp } from "../inbox/acks.ts";

export const MESSAGE_TYPES = [
  "TEXT", "MEDIA", "VOICE", "FILE", "LOCATION", "CONTACT", "POLL", "EVENT", "CALL",
  "STICKER", "REACTION", "EDIT", "SYSTEM", "OTHER",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const MAX_CLIENT_MESSAGE_ID = 64;
export const MAX_EXPIRES_IN_SECONDS = 365 * 86_400;
export const MAX_MESSAGE_IDS = 500;

export interface EnvelopeInput {
  deviceId: number;
  registrationId: number;
  type: number;
  body: Uint8Array;
}

export interface SendMessageInput {
  recipientUserId: string;
  clientMessageId: string;
  messageType: MessageType;
  expiresInSeconds?: number | null;
  envelopes: EnvelopeInput[];
  syncEnvelopes?: EnvelopeInput[] | null;
}

export interface SendResult {
  messageId: string;
  serverTimestamp: Date;
}

export type MessageStatus = "SENT" | "DELIVERED" | "READ";

export interface MessageInfo {
  id: string;
  seq: bigint;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: number;
  /** null for a group message: its recipients are the group's members. */
  recipientUserId: string | null;
  /** null for a group message (MLS carries no client message id the server can read). */
  clientMessageId: string | null;
  /** null for a group message: only 1:1 senders declare a type to the server. */
  messageType: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  deliveredAt: Date | null;
  readAt: Date | null;
}

export interface ConversationInfo {
  id: string;
  userA: string;
  userB: string;
  createdAt: Date;
  lastMessageAt: Date;
}

export interface Page {
  after?: string | null;
  before?: string | null;
  limit: number;
  /** true when the client asked for the last items (relay `last`): read in the opposite order. */
  inverted: boolean;
}

/** A message connection cursor: the message's sequence number in its conversation or group. */
export function cursorSeq(cursor: string): bigint {
  if (!/^[0-9]{1,19}$/.test(cursor)) throw badInput("invalid cursor");
  return BigInt(cursor);
}

export const statusOf = (m: Pick<MessageInfo, "deliveredAt" | "readAt">): MessageStatus =>
  m.readAt ? "READ" : m.deliveredAt ? "DELIVERED" : "SENT";

const pair = (a: string, b: string): [string, string] => (a <= b ? [a, b] : [b, a]);

export type MessagesService = ReturnType<typeof createMessagesService>;

export function createMessagesService(deps: ServiceDeps, inbox: InboxService) {
  const { prisma, sql, config } = deps;
  const limits = config.messaging;

  function checkEnvelopes(list: EnvelopeInput[], field: string) {
    if (list.length > config.maxDevicesPerUser) {
      throw badInput(`${field}: at most ${config.maxDevicesPerUser} envelopes (one per device)`);
    }
    const seen = new Set<number>();
    for (const [i, e] of list.entries()) {
      if (seen.has(e.deviceId)) throw badInput(`${field}[${i}]: two envelopes for device ${e.deviceId}`);
      seen.add(e.deviceId);
      if (e.body.byteLength === 0) throw badInput(`${field}[${i}].body is empty`);
      if (e.body.byteLength > limits.maxEnvelopeBytes) {
        throw new AppError("LIMIT_EXCEEDED", `${field}[${i}].body is over ${limits.maxEnvelopeBytes} bytes`, {
          maxEnvelopeBytes: limits.maxEnvelopeBytes,
        });
      }
      if (!Number.isInteger(e.type) || e.type < 0 || e.type > 255) throw badInput(`${field}[${i}].type must be 0-255`);
    }
  }

  /** Signal-Server's rule: exactly one envelope per active device, with the registration id the sender knows. */
  function checkDeviceSet(
    userId: string,
    expected: { deviceId: number; registrationId: number }[],
    given: EnvelopeInput[],
  ) {
    const want = new Map(expected.map((d) => [d.deviceId, d.registrationId]));
    const have = new Set(given.map((e) => e.deviceId));
    const missingDevices = [...want.keys()].filter((d) => !have.has(d)).sort((a, b) => a - b);
    const extraDevices = [...have].filter((d) => !want.has(d)).sort((a, b) => a - b);
    if (missingDevices.length || extraDevices.length) {
      throw new AppError("MISMATCHED_DEVICES", "the envelopes do not match the user's active devices", {
        userId,
        missingDevices,
        extraDevices,
      });
    }
    const staleDevices = given
      .filter((e) => want.get(e.deviceId) !== e.registrationId)
      .map((e) => e.deviceId)
      .sort((a, b) => a - b);
    if (staleDevices.length) {
      throw new AppError("STALE_DEVICES", "some devices were re-registered: fetch their bundles again", {
        userId,
        staleDevices,
      });
    }
  }

  /** A send that passed its input checks, waiting for its batch. */
  interface SendRequest {
    actor: Actor;
    recipient: string;
    clientMessageId: string;
    messageType: MessageType;
    ttl: number | null;
    envelopes: EnvelopeInput[];
    sync: EnvelopeInput[];
  }
  type DeviceRow = { userId: string; deviceId: number; registrationId: number };

  function prepare(actor: Actor, input: SendMessageInput): SendRequest {
    const clientMessageId = input.clientMessageId;
    if (clientMessageId.length < 1 || clientMessageId.length > MAX_CLIENT_MESSAGE_ID) {
      throw badInput(`clientMessageId must be 1 to ${MAX_CLIENT_MESSAGE_ID} characters`);
    }
    const ttl = input.expiresInSeconds ?? null;
    if (ttl !== null && (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_EXPIRES_IN_SECONDS)) {
      throw badInput(`expiresInSeconds must be 1 to ${MAX_EXPIRES_IN_SECONDS}`);
    }
    const envelopes = input.envelopes;
    const sync = input.syncEnvelopes ?? [];
    checkEnvelopes(envelopes, "envelopes");
    checkEnvelopes(sync, "syncEnvelopes");
    return { actor, recipient: input.recipientUserId.toLowerCase(), clientMessageId, messageType: input.messageType, ttl, envelopes, sync };
  }

  /** The device-set checks against the users' active devices; throws the refusal. */
  function checkRecipients(req: SendRequest, devices: DeviceRow[]): void {
    const { actor, recipient } = req;
    const noteToSelf = recipient === actor.userId;
    const ownOthers = devices.filter((d) => d.userId === actor.userId && d.deviceId !== actor.deviceId);
    const theirs = noteToSelf ? ownOthers : devices.filter((d) => d.userId === recipient);
    if (!noteToSelf && theirs.length === 0) throw notFound("no such user, or the user has no active device");
    checkDeviceSet(recipient, theirs, req.envelopes);
    // In Note to Self the envelopes already are the sync copies.
    checkDeviceSet(actor.userId, noteToSelf ? [] : ownOthers, req.sync);
  }

  const sendKey = (userId: string, deviceId: number, clientMessageId: string) => `${userId}|${deviceId}|${clientMessageId}`;
  const keyOf = (r: SendRequest) => sendKey(r.actor.userId, r.actor.deviceId, r.clientMessageId);

  /**
   * What a batch of sends is checked against, in one round trip: the active devices of these users, and the sends
   * among `reqs` already stored (a retried call gets the first call's answer and stores nothing).
   */
  async function readForSends(userIds: string[], reqs: SendRequest[]) {
    const rows = await sql<{ k: "d" | "m"; u: string; d: number; r: number | null; id: string | null; at: number | null; c: string | null }>(
      `SELECT 'd' AS k, user_id::text AS u, device_id AS d, registration_id AS r, NULL::text AS id, NULL::float8 AS at,
              NULL::text AS c
       FROM devices WHERE user_id = ANY($1::uuid[]) AND active
       UNION ALL
       SELECT 'm', m.sender_user_id::text, m.sender_device_id, NULL, m.id::text,
              extract(epoch FROM m.created_at)::float8 * 1000, m.client_message_id
       FROM unnest($2::uuid[], $3::int[], $4::text[]) AS k(u, d, c)
       JOIN messages m ON m.sender_user_id = k.u AND m.sender_device_id = k.d AND m.client_message_id = k.c`,
      [[...new Set(userIds)], reqs.map((r) => r.actor.userId), reqs.map((r) => r.actor.deviceId), reqs.map((r) => r.clientMessageId)],
    );
    const devices = new Map<string, DeviceRow[]>();
    const stored = new Map<string, SendResult>();
    for (const r of rows) {
      if (r.k === "m") stored.set(sendKey(r.u, r.d, r.c!), { messageId: r.id!, serverTimestamp: new Date(Math.round(Number(r.at))) });
      else devices.set(r.u, [...(devices.get(r.u) ?? []), { userId: r.u, deviceId: r.d, registrationId: r.r! }]);
    }
    return { devices, stored };
  }

  /**
   * Stores accepted sends in one statement (atomic on its own, one round trip): the pairs' conversations, the
   * message rows and the recipients' queue rows. A send whose client message id is already stored (a concurrent
   * copy of the same call won) stores nothing. Returns the ids of the messages stored and their live events.
   */
  async function write(
    sends: { req: SendRequest; messageId: string }[],
    now: Date,
  ): Promise<{ stored: Set<string>; deliveries: Delivery[] }> {
    const pairs = new Map<string, [string, string]>();
    for (const { req } of sends) {
      const p = pair(req.actor.userId, req.recipient);
      pairs.set(`${p[0]}|${p[1]}`, p);
    }
    // Sorted, so two statements upserting overlapping conversations lock their rows in the same order.
    const list = [...pairs.values()].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1));
    const m = { id: [] as string[], a: [] as string[], b: [] as string[], sender: [] as string[], dev: [] as number[], to: [] as string[], cid: [] as string[], type: [] as string[], exp: [] as (string | null)[] };
    const items: InboxItem[] = [];
    for (const { req, messageId } of sends) {
      const { actor, recipient } = req;
      const [a, b] = pair(actor.userId, recipient);
      const expiresAt = req.ttl ? new Date(now.getTime() + req.ttl * 1000) : null;
      const queueExpiry = expiresAt ?? inbox.retentionExpiry(now);
      m.id.push(messageId);
      m.a.push(a);
      m.b.push(b);
      m.sender.push(actor.userId);
      m.dev.push(actor.deviceId);
      m.to.push(recipient);
      m.cid.push(req.clientMessageId);
      m.type.push(req.messageType);
      m.exp.push(expiresAt?.toISOString() ?? null);
      const item = (userId: string, e: EnvelopeInput): InboxItem => ({
        id: 0n,
        userId,
        deviceId: e.deviceId,
        kind: "envelope",
        messageId,
        conversationId: null,
        senderUserId: actor.userId,
        senderDeviceId: actor.deviceId,
        ciphertextType: e.type,
        body: e.body as InboxItem["body"],
        payload: expiresAt ? { selfDestruct: true } : null,
        createdAt: now,
        expiresAt: queueExpiry,
      });
      const noteToSelf = recipient === actor.userId;
      for (const e of req.envelopes) items.push(item(noteToSelf ? actor.userId : recipient, e));
      for (const e of req.sync) items.push(item(actor.userId, e));
    }
    const rows = await sql<{ k: "m" | "i"; id: string; ref: string; u: string | null; d: number | null }>(WRITE_SENDS, [
      now.toISOString(),
      list.map(() => randomUUID()),
      list.map((p) => p[0]),
      list.map((p) => p[1]),
      m.id, m.a, m.b, m.sender, m.dev, m.to, m.cid, m.type, m.exp,
      items.map((i) => i.userId),
      items.map((i) => i.deviceId),
      items.map((i) => i.messageId),
      items.map((i) => i.ciphertextType),
      items.map((i) => Buffer.from(i.body!).toString("base64")),
      items.map((i) => (i.payload ? JSON.stringify(i.payload) : null)),
      items.map((i) => i.expiresAt.toISOString()),
    ]);
    const conversationOf = new Map<string, string>();
    const itemIds = new Map<string, string>();
    for (const r of rows) {
      if (r.k === "m") conversationOf.set(r.id, r.ref);
      else itemIds.set(`${r.ref}|${r.u}|${r.d}`, r.id);
    }
    const deliveries = items
      .filter((i) => conversationOf.has(i.messageId!))
      .map((i) => {
        i.id = BigInt(itemIds.get(`${i.messageId}|${i.userId}|${i.deviceId}`)!);
        i.conversationId = conversationOf.get(i.messageId!)!;
        return { userId: i.userId, deviceId: i.deviceId, event: shape(i) };
      });
    return { stored: new Set(conversationOf.keys()), deliveries };
  }

  /**
   * Many concurrent sends: one read and one statement for all; each answers after that statement committed. A
   * send raced by a copy of itself (same sender device and client message id) is skipped by the statement.
   */
  async function sendBatch(reqs: SendRequest[]): Promise<Settled<SendResult>[]> {
    const out: Settled<SendResult>[] = new Array(reqs.length);
    const { devices, stored } = await readForSends(reqs.flatMap((r) => [r.recipient, r.actor.userId]), reqs);
    const writes: { req: SendRequest; messageId: string; i: number }[] = [];
    reqs.forEach((req, i) => {
      const first = stored.get(keyOf(req));
      if (first) return void (out[i] = { ok: true, value: first });
      try {
        checkRecipients(req, [...(devices.get(req.recipient) ?? []), ...(req.recipient === req.actor.userId ? [] : devices.get(req.actor.userId) ?? [])]);
        writes.push({ req, messageId: randomUUID(), i });
      } catch (error) {
        out[i] = { ok: false, error };
      }
    });
    if (writes.length === 0) return out;
    const now = new Date();
    let result: Awaited<ReturnType<typeof write>>;
    try {
      result = await write(writes, now);
    } catch (error) {
      if (writes.length === 1) return (out[writes[0].i] = { ok: false, error }), out;
      // Nothing of the batch was stored: each send is tried alone and gets its own answer.
      for (const w of writes) out[w.i] = (await sendBatch([w.req]))[0];
      return out;
    }
    inbox.publish(result.deliveries);
    // Not stored: the same send (a retry, or twice in this batch) was stored first, and its answer is the answer.
    const lost = writes.filter((w) => !result.stored.has(w.messageId));
    const firsts = lost.length > 0 ? (await readForSends([], lost.map((w) => w.req))).stored : new Map<string, SendResult>();
    for (const w of writes) {
      const first = firsts.get(keyOf(w.req));
      out[w.i] = result.stored.has(w.messageId)
        ? { ok: true, value: { messageId: w.messageId, serverTimestamp: now } }
        : first
          ? { ok: true, value: first }
          : { ok: false, error: new Error("a send was neither stored nor found stored") };
    }
    return out;
  }

  // At most one batch per two pooled connections is in flight (each holds one connection at a time), leaving
  // connections for everything else; PGlite has one.
  const sends = new Batcher<SendRequest, SendResult>(sendBatch, {
    maxBatch: 128,
    maxConcurrent: config.database.kind === "postgres" ? Math.max(1, Math.floor(config.database.poolSize / 2)) : 1,
  });

  async function send(actor: Actor, input: SendMessageInput): Promise<SendResult> {
    return sends.submit(prepare(actor, input));
  }

  async function activeDevicesOf(tx: Tx, userId: string) {
    return tx.device.findMany({ where: { userId, active: true }, select: { userId: true, deviceId: true } });
  }

  /** Receipt items for every active device of each message's sender. */
  async function receiptItems(
    tx: Tx,
    reader: string,
    kind: "DELIVERED" | "READ",
    at: Date,
    changed: { id: string; conversationId: string; senderUserId: string; expiresAt: Date | null }[],
  ): Promise<NewInboxItem[]> {
    const items: NewInboxItem[] = [];
    const devicesBySender = new Map<string, { deviceId: number }[]>();
    for (const m of changed) {
      if (!devicesBySender.has(m.senderUserId)) devicesBySender.set(m.senderUserId, await activeDevicesOf(tx, m.senderUserId));
      for (const d of devicesBySender.get(m.senderUserId)!) {
        items.push({
          userId: m.senderUserId,
          deviceId: d.deviceId,
          kind: "receipt",
          messageId: m.id,
          conversationId: m.conversationId,
          payload: { userId: reader, kind, at: at.toISOString() },
          expiresAt: m.expiresAt ?? inbox.retentionExpiry(at),
        });
      }
    }
    return items;
  }

  /**
   * Delivered: one of the recipient's devices acknowledged an envelope (sync copies do not count), in the
   * acknowledging statement: the messages locked in id order, marked, and one receipt per sender device listing them.
   */
  inbox.onAck(DELIVERED_ON_ACK);

  async function readReceiptsEnabled(userId: string): Promise<boolean> {
    const u = await prisma.user.findUnique({ where: { id: userId }, select: { readReceipts: true } });
    return u?.readReceipts ?? false;
  }

  async function setReadReceipts(actor: Actor, enabled: boolean): Promise<boolean> {
    await prisma.user.update({ where: { id: actor.userId }, data: { readReceipts: enabled } });
    return enabled;
  }

  /** Marks messages addressed to the caller read. With read receipts off nothing is stored or sent. */
  async function markRead(actor: Actor, messageIds: string[]): Promise<number> {
    if (messageIds.length > MAX_MESSAGE_IDS) throw badInput(`at most ${MAX_MESSAGE_IDS} message ids per call`);
    if (messageIds.length === 0 || !(await readReceiptsEnabled(actor.userId))) return 0;
    const ids = [...new Set(messageIds.map((m) => m.toLowerCase()))];
    const at = new Date();
    const { count, deliveries } = await prisma.$transaction(async (tx) => {
      const changed = await tx.$queryRaw<{ id: string; conversationId: string; senderUserId: string; expiresAt: Date | null }[]>`
        UPDATE messages SET read_at = ${at}, delivered_at = COALESCE(delivered_at, ${at})
        WHERE id = ANY(${ids}::uuid[]) AND recipient_user_id = ${actor.userId}::uuid AND read_at IS NULL
          AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ${at})
        RETURNING id::text, conversation_id::text AS "conversationId", sender_user_id::text AS "senderUserId",
                  expires_at AS "expiresAt"`;
      return { count: changed.length, deliveries: await inbox.enqueue(tx, await receiptItems(tx, actor.userId, "READ", at, changed)) };
    });
    inbox.publish(deliveries);
    return count;
  }

  const visible = (now: Date): Prisma.MessageWhereInput => ({
    deletedAt: null,
    OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
  });

  async function deleteMessage(actor: Actor, messageId: string, forEveryone: boolean): Promise<boolean> {
    const now = new Date();
    const m = await prisma.message.findFirst({
      where: {
        id: messageId.toLowerCase(),
        ...visible(now),
        OR: [{ senderUserId: actor.userId }, { recipientUserId: actor.userId }],
        hidden: { none: { userId: actor.userId } },
      },
    });
    if (!m) throw notFound("no such message");
    if (!forEveryone) {
      await prisma.hiddenMessage.createMany({ data: [{ messageId: m.id, userId: actor.userId }], skipDuplicates: true });
      return true;
    }
    if (m.senderUserId !== actor.userId) throw forbidden("only the sender can delete a message for everyone");
    const windowMs = limits.deleteForEveryoneWindowSeconds * 1000;
    if (now.getTime() - m.createdAt.getTime() > windowMs) {
      throw forbidden(`a message can be deleted for everyone only within ${limits.deleteForEveryoneWindowSeconds} s`);
    }
    const deliveries = await prisma.$transaction(async (tx) => {
      const done = await tx.message.updateMany({ where: { id: m.id, deletedAt: null }, data: { deletedAt: now } });
      if (done.count === 0) return [];
      // Undelivered copies are dropped; devices that already have it are told to remove it.
      await tx.inboxItem.deleteMany({ where: { messageId: m.id, kind: "envelope" } });
      const recipients = await tx.device.findMany({
        where: { userId: { in: [...new Set([m.recipientUserId, m.senderUserId])] }, active: true },
        select: { userId: true, deviceId: true },
      });
      return inbox.enqueue(
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
            expiresAt: m.expiresAt ?? inbox.retentionExpiry(now),
          })),
      );
    });
    inbox.publish(deliveries);
    return true;
  }

  /**
   * Everyone who talks with `userId` (and its own devices) learns that its device list changed. A deactivated
   * device's queue goes too: nobody can acknowledge it any more.
   */
  async function deviceListChanged(userId: string): Promise<void> {
    const now = new Date();
    const deliveries = await prisma.$transaction(async (tx) => {
      await tx.$executeRaw`
        DELETE FROM inbox_items i USING devices d
        WHERE d.user_id = ${userId}::uuid AND NOT d.active AND i.user_id = d.user_id AND i.device_id = d.device_id`;
      const targets = await tx.$queryRaw<{ userId: string; deviceId: number }[]>`
        SELECT d.user_id::text AS "userId", d.device_id AS "deviceId" FROM devices d
        WHERE d.active AND (d.user_id = ${userId}::uuid OR d.user_id IN (
          SELECT CASE WHEN c.user_a = ${userId}::uuid THEN c.user_b ELSE c.user_a END FROM conversations c
          WHERE c.user_a = ${userId}::uuid OR c.user_b = ${userId}::uuid))`;
      return inbox.enqueue(
        tx,
        targets.map((t) => ({
          userId: t.userId,
          deviceId: t.deviceId,
          kind: "device_list",
          payload: { userId },
          expiresAt: inbox.retentionExpiry(now),
        })),
      );
    });
    inbox.publish(deliveries);
  }

  async function conversationFor(actor: Actor, conversationId: string): Promise<ConversationInfo> {
    const c = await prisma.conversation.findFirst({
      where: { id: conversationId.toLowerCase(), OR: [{ userA: actor.userId }, { userB: actor.userId }] },
    });
    if (!c) throw notFound("no such conversation");
    return c;
  }

  async function isParticipant(userId: string, conversationId: string): Promise<boolean> {
    const c = await prisma.conversation.findFirst({
      where: { id: conversationId.toLowerCase(), OR: [{ userA: userId }, { userB: userId }] },
      select: { id: true },
    });
    return !!c;
  }

  /** The users among `others` who share a conversation with `userId` (themselves included). */
  async function contactsAmong(userId: string, others: string[]): Promise<Set<string>> {
    const ids = [...new Set(others.map((o) => o.toLowerCase()))];
    const rows = await prisma.conversation.findMany({
      where: {
        OR: [
          { userA: userId, userB: { in: ids } },
          { userB: userId, userA: { in: ids } },
        ],
      },
      select: { userA: true, userB: true },
    });
    const out = new Set<string>(ids.includes(userId) ? [userId] : []);
    for (const r of rows) out.add(r.userA === userId ? r.userB : r.userA);
    return out;
  }

  const cursorOf = (c: ConversationInfo) => `${c.lastMessageAt.getTime()}_${c.id}`;
  function parseConversationCursor(cursor: string): { at: Date; id: string } {
    const m = /^(\d{1,16})_([0-9a-f-]{36})$/.exec(cursor);
    if (!m) throw badInput("invalid cursor");
    return { at: new Date(Number(m[1])), id: m[2] };
  }

  /** The caller's conversations, most recently active first. */
  async function conversations(actor: Actor, page: Page): Promise<ConversationInfo[]> {
    const after = page.after ? parseConversationCursor(page.after) : null;
    const before = page.before ? parseConversationCursor(page.before) : null;
    const ordered = (c: { at: Date; id: string }, older: boolean): Prisma.ConversationWhereInput =>
      older
        ? { OR: [{ lastMessageAt: { lt: c.at } }, { lastMessageAt: c.at, id: { lt: c.id } }] }
        : { OR: [{ lastMessageAt: { gt: c.at } }, { lastMessageAt: c.at, id: { gt: c.id } }] };
    const dir = page.inverted ? "asc" : "desc";
    return prisma.conversation.findMany({
      where: {
        AND: [
          { OR: [{ userA: actor.userId }, { userB: actor.userId }] },
          after ? ordered(after, true) : {},
          before ? ordered(before, false) : {},
        ],
      },
      orderBy: [{ lastMessageAt: dir }, { id: dir }],
      take: page.limit,
    });
  }

  /** A conversation's messages, newest first; hidden, deleted and expired ones are never served. */
  async function messages(actor: Actor, conversationId: string, page: Page): Promise<MessageInfo[]> {
    const c = await conversationFor(actor, conversationId);
    const now = new Date();
    return prisma.message.findMany({
      where: {
        conversationId: c.id,
        ...visible(now),
        hidden: { none: { userId: actor.userId } },
        seq: {
          ...(page.after ? { lt: cursorSeq(page.after) } : {}),
          ...(page.before ? { gt: cursorSeq(page.before) } : {}),
        },
      },
      orderBy: { seq: page.inverted ? "asc" : "desc" },
      take: page.limit,
    });
  }

  /** Deletes self-destructed messages (their queue items go with the inbox sweep). */
  async function sweep(): Promise<number> {
    const { count } = await prisma.message.deleteMany({ where: { expiresAt: { lte: new Date() } } });
    return count;
  }

  return {
    send,
    markRead,
    setReadReceipts,
    readReceiptsEnabled,
    deleteMessage,
    deviceListChanged,
    conversationFor,
    isParticipant,
    contactsAmong,
    conversations,
    conversationCursor: cursorOf,
    messages,
    sweep,
  };
}

// The messages part of an acknowledgement batch (see AckFollowUp in src/inbox/acks.ts): `acked` holds the removed
// queue rows; an envelope acknowledged by a device of its recipient marks the message delivered, once.
const DELIVERED_CTES = `
seen AS (
  SELECT m.id FROM messages m
  JOIN (SELECT DISTINCT message_id, user_id FROM acked WHERE kind = 'envelope') a
    ON m.id = a.message_id AND m.recipient_user_id = a.user_id
  WHERE m.delivered_at IS NULL
  ORDER BY m.id FOR UPDATE OF m
), delivered AS (
  UPDATE messages m SET delivered_at = $1::timestamptz FROM seen WHERE m.id = seen.id
  RETURNING m.id, m.seq, m.conversation_id, m.sender_user_id, m.recipient_user_id, m.expires_at
)`;

export const DELIVERED_ON_ACK: AckFollowUp = { ctes: `${DELIVERED_CTES}, ${coalescedReceipts("delivered", "DELIVERED")}` };

// The write of a batch of sends, in one statement. The conversations are upserted in the order given (sorted by the
// caller) and only the pairs' last_message_at moves, which takes a NO KEY UPDATE lock: it does not wait for the KEY
// SHARE locks other statements' message rows take on it (foreign key), so overlapping batches queue on a pair's row
// only for the length of one statement. Queue rows are written only for the messages actually stored.
export const WRITE_SENDS = `
WITH conv AS (
  INSERT INTO conversations AS c (id, user_a, user_b, created_at, last_message_at)
  SELECT k.id, k.a, k.b, $1::timestamptz, $1::timestamptz
  FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) WITH ORDINALITY AS k(id, a, b, n)
  ORDER BY k.n
  ON CONFLICT (user_a, user_b) DO UPDATE SET last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at)
  RETURNING c.id, c.user_a, c.user_b
), msg AS (
  INSERT INTO messages (id, conversation_id, sender_user_id, sender_device_id, recipient_user_id, client_message_id,
                        message_type, created_at, expires_at)
  SELECT k.id, conv.id, k.sender, k.dev, k.rcpt, k.cid, k.type, $1::timestamptz, k.exp
  FROM unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::int[], $10::uuid[], $11::text[], $12::text[],
              $13::timestamptz[]) WITH ORDINALITY AS k(id, a, b, sender, dev, rcpt, cid, type, exp, n)
  JOIN conv ON conv.user_a = k.a AND conv.user_b = k.b
  ORDER BY k.n
  ON CONFLICT (sender_user_id, sender_device_id, client_message_id) DO NOTHING
  RETURNING id, conversation_id, sender_user_id, sender_device_id
), item AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, sender_user_id, sender_device_id,
                           ciphertext_type, body, payload, created_at, expires_at)
  SELECT k.u, k.d, 'envelope', k.m, msg.conversation_id, msg.sender_user_id, msg.sender_device_id, k.t,
         decode(k.b, 'base64'), k.p::jsonb, $1::timestamptz, k.e
  FROM unnest($14::uuid[], $15::int[], $16::uuid[], $17::int[], $18::text[], $19::text[], $20::timestamptz[])
    WITH ORDINALITY AS k(u, d, m, t, b, p, e, n)
  JOIN msg ON msg.id = k.m
  ORDER BY k.n
  RETURNING id, user_id, device_id, message_id
)
SELECT 'm' AS k, id::text AS id, conversation_id::text AS ref, NULL::text AS u, NULL::int AS d FROM msg
UNION ALL
SELECT 'i', id::text, message_id::text, user_id::text, device_id FROM item`;
