// 1:1 messages: sending ciphertext to every device of a user (and sync copies to the sender's other devices) with
// Signal-Server's device-set checks, delivery and read status, deletion, self-destruct, and the conversation list.
// Bodies are opaque: they are stored in the recipients' queues (src/services/inbox.ts) and never parsed.
import { randomUUID } from "node:crypto";
import { AppError, badInput, forbidden, notFound } from "../errors.ts";
import type { InboxItem, Prisma } from "../generated/prisma/client.ts";
import { Batcher, type Settled } from "./batcher.ts";
import { isUniqueViolation } from "../store/errors.ts";
import type { Actor, ServiceDeps, Tx } from "./deps.ts";
import { shape, type AckedItem, type Delivery, type InboxService, type NewInboxItem } from "./inbox.ts";

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
  const { prisma, config } = deps;
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

  async function priorSend(actor: Actor, clientMessageId: string): Promise<SendResult | null> {
    const m = await prisma.message.findUnique({
      where: {
        senderUserId_senderDeviceId_clientMessageId: {
          senderUserId: actor.userId,
          senderDeviceId: actor.deviceId,
          clientMessageId,
        },
      },
      select: { id: true, createdAt: true },
    });
    return m ? { messageId: m.id, serverTimestamp: m.createdAt } : null;
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

  function activeDevices(userIds: string[]): Promise<DeviceRow[]> {
    return prisma.device.findMany({
      where: { userId: { in: [...new Set(userIds)] }, active: true },
      select: { userId: true, deviceId: true, registrationId: true },
    });
  }

  /**
   * Stores accepted sends in the caller's transaction: one conversation upsert, one messages INSERT and one queue
   * INSERT for all of them. Returns the live events to publish after commit.
   */
  async function write(tx: Tx, sends: { req: SendRequest; messageId: string }[], now: Date): Promise<Delivery[]> {
    // Conversations are hot rows (every send of a pair touches one). Existing ones are read without a lock here and
    // their last_message_at is moved at the end of the transaction, so concurrent batches hold those row locks only
    // through the final UPDATE and the commit. Only a pair's first message creates its row here.
    const pairs = new Map<string, [string, string]>();
    for (const { req } of sends) {
      const p = pair(req.actor.userId, req.recipient);
      pairs.set(`${p[0]}|${p[1]}`, p);
    }
    const list = [...pairs.values()].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1));
    const rows = await tx.$queryRaw<{ id: string; a: string; b: string }[]>`
      SELECT c.id::text, c.user_a::text AS a, c.user_b::text AS b
      FROM unnest(${list.map((p) => p[0])}::uuid[], ${list.map((p) => p[1])}::uuid[]) AS k(a, b)
      JOIN conversations c ON c.user_a = k.a AND c.user_b = k.b`;
    const known = new Set(rows.map((r) => `${r.a}|${r.b}`));
    const fresh = list.filter((p) => !known.has(`${p[0]}|${p[1]}`));
    if (fresh.length > 0) {
      rows.push(
        ...(await tx.$queryRaw<{ id: string; a: string; b: string }[]>`
          INSERT INTO conversations (id, user_a, user_b, created_at, last_message_at)
          SELECT k.id, k.a, k.b, ${now}, ${now}
          FROM unnest(${fresh.map(() => randomUUID())}::uuid[], ${fresh.map((p) => p[0])}::uuid[], ${fresh.map((p) => p[1])}::uuid[])
            WITH ORDINALITY AS k(id, a, b, n)
          ORDER BY k.n
          ON CONFLICT (user_a, user_b)
            DO UPDATE SET last_message_at = GREATEST(conversations.last_message_at, EXCLUDED.last_message_at)
          RETURNING id::text, user_a::text AS a, user_b::text AS b`),
      );
    }
    const conversationOf = new Map(rows.map((r) => [`${r.a}|${r.b}`, r.id]));
    // Raw statements over unnest(): one fixed statement shape whatever the batch size, so nothing is planned or
    // compiled per batch (Prisma's createMany compiles a new plan for each row count).
    const m = { id: [] as string[], conv: [] as string[], sender: [] as string[], dev: [] as number[], to: [] as string[], cid: [] as string[], type: [] as string[], exp: [] as (string | null)[] };
    const items: InboxItem[] = [];
    for (const { req, messageId } of sends) {
      const { actor, recipient } = req;
      const [a, b] = pair(actor.userId, recipient);
      const conversationId = conversationOf.get(`${a}|${b}`)!;
      const expiresAt = req.ttl ? new Date(now.getTime() + req.ttl * 1000) : null;
      const queueExpiry = expiresAt ?? inbox.retentionExpiry(now);
      m.id.push(messageId);
      m.conv.push(conversationId);
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
        conversationId,
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
    // The message rows and the queue rows in one statement (one round trip).
    const ids = await tx.$queryRaw<{ id: bigint; u: string; d: number; m: string }[]>`
      WITH stored AS (
      INSERT INTO messages (id, conversation_id, sender_user_id, sender_device_id, recipient_user_id, client_message_id,
                            message_type, created_at, expires_at)
      SELECT k.id, k.conv, k.sender, k.dev, k.rcpt, k.cid, k.type, ${now}, k.exp
      FROM unnest(${m.id}::uuid[], ${m.conv}::uuid[], ${m.sender}::uuid[], ${m.dev}::int[], ${m.to}::uuid[],
                  ${m.cid}::text[], ${m.type}::text[], ${m.exp}::timestamptz[]) AS k(id, conv, sender, dev, rcpt, cid, type, exp))
      INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, sender_user_id, sender_device_id,
                               ciphertext_type, body, payload, created_at, expires_at)
      SELECT k.u, k.d, 'envelope', k.m, k.c, k.su, k.sd, k.t, decode(k.b, 'base64'), k.p::jsonb, ${now}, k.e
      FROM unnest(${items.map((i) => i.userId)}::uuid[], ${items.map((i) => i.deviceId)}::int[],
                  ${items.map((i) => i.messageId)}::uuid[], ${items.map((i) => i.conversationId)}::uuid[],
                  ${items.map((i) => i.senderUserId)}::uuid[], ${items.map((i) => i.senderDeviceId)}::int[],
                  ${items.map((i) => i.ciphertextType)}::int[], ${items.map((i) => Buffer.from(i.body!).toString("base64"))}::text[],
                  ${items.map((i) => (i.payload ? JSON.stringify(i.payload) : null))}::text[],
                  ${items.map((i) => i.expiresAt.toISOString())}::timestamptz[])
        AS k(u, d, m, c, su, sd, t, b, p, e)
      RETURNING id, user_id::text AS u, device_id AS d, message_id::text AS m`;
    // Locked in id order, so two batches touching the same conversations cannot deadlock; NO KEY UPDATE does not
    // wait for the KEY SHARE locks that other batches' message rows take on the conversation (foreign key).
    await tx.$executeRaw`
      UPDATE conversations c SET last_message_at = GREATEST(c.last_message_at, ${now})
      FROM (SELECT id FROM conversations WHERE id = ANY(${rows.map((r) => r.id)}::uuid[]) ORDER BY id FOR NO KEY UPDATE) s
      WHERE c.id = s.id`;
    const idOf = new Map(ids.map((r) => [`${r.m}|${r.u}|${r.d}`, r.id]));
    return items.map((i) => {
      i.id = BigInt(idOf.get(`${i.messageId}|${i.userId}|${i.deviceId}`)!);
      return { userId: i.userId, deviceId: i.deviceId, event: shape(i) };
    });
  }

  /** One send on its own: the path for a batch that failed as a whole, so one bad send cannot fail the others. */
  async function sendOne(req: SendRequest): Promise<SendResult> {
    const prior = await priorSend(req.actor, req.clientMessageId);
    if (prior) return prior;
    checkRecipients(req, await activeDevices([req.recipient, req.actor.userId]));
    const now = new Date();
    const messageId = randomUUID();
    let deliveries: Delivery[];
    try {
      deliveries = await prisma.$transaction((tx) => write(tx, [{ req, messageId }], now));
    } catch (err) {
      // The same send raced itself: the other one committed first, and its answer is the answer.
      if (isUniqueViolation(err)) {
        const first = await priorSend(req.actor, req.clientMessageId);
        if (first) return first;
      }
      throw err;
    }
    inbox.publish(deliveries);
    return { messageId, serverTimestamp: now };
  }

  const settle = (p: Promise<SendResult>): Promise<Settled<SendResult>> =>
    p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));

  /** Many concurrent sends: two reads and one transaction for all; each answers after that transaction committed. */
  async function sendBatch(reqs: SendRequest[]): Promise<Settled<SendResult>[]> {
    if (reqs.length === 1) return [await settle(sendOne(reqs[0]))];
    const out: Settled<SendResult>[] = new Array(reqs.length);
    const key = (u: string, d: number, c: string) => `${u}|${d}|${c}`;
    const priors = await prisma.$queryRaw<
      { id: string; createdAt: Date; u: string; d: number; c: string }[]
    >`SELECT m.id::text, m.created_at AS "createdAt", m.sender_user_id::text AS u, m.sender_device_id AS d,
             m.client_message_id AS c
      FROM unnest(${reqs.map((r) => r.actor.userId)}::uuid[], ${reqs.map((r) => r.actor.deviceId)}::int[],
                  ${reqs.map((r) => r.clientMessageId)}::text[]) AS k(u, d, c)
      JOIN messages m ON m.sender_user_id = k.u AND m.sender_device_id = k.d AND m.client_message_id = k.c`;
    const prior = new Map(priors.map((p) => [key(p.u, p.d, p.c), { messageId: p.id, serverTimestamp: p.createdAt }]));
    const devices = await activeDevices(reqs.flatMap((r) => [r.recipient, r.actor.userId]));
    const byUser = new Map<string, DeviceRow[]>();
    for (const d of devices) byUser.set(d.userId, [...(byUser.get(d.userId) ?? []), d]);
    const seen = new Set<string>();
    const writes: { req: SendRequest; messageId: string; i: number }[] = [];
    const later: number[] = [];
    reqs.forEach((req, i) => {
      const k = key(req.actor.userId, req.actor.deviceId, req.clientMessageId);
      const p = prior.get(k);
      if (p) return void (out[i] = { ok: true, value: p });
      // The same send twice in one batch: the second answers with the first's result once it is stored.
      if (seen.has(k)) return void later.push(i);
      seen.add(k);
      try {
        checkRecipients(req, [...(byUser.get(req.recipient) ?? []), ...(req.recipient === req.actor.userId ? [] : byUser.get(req.actor.userId) ?? [])]);
        writes.push({ req, messageId: randomUUID(), i });
      } catch (error) {
        out[i] = { ok: false, error };
      }
    });
    if (writes.length > 0) {
      const now = new Date();
      try {
        const deliveries = await prisma.$transaction((tx) => write(tx, writes, now));
        inbox.publish(deliveries);
        for (const w of writes) out[w.i] = { ok: true, value: { messageId: w.messageId, serverTimestamp: now } };
      } catch {
        // Nothing of the batch was stored: each send is tried alone and gets its own answer.
        for (const w of writes) out[w.i] = await settle(sendOne(w.req));
      }
    }
    for (const i of later) out[i] = await settle(sendOne(reqs[i]));
    return out;
  }

  // At most one batch per two pooled connections is written at a time, leaving connections for reads; PGlite has one.
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

  /** Delivered: one of the recipient's devices acknowledged an envelope (sync copies do not count). */
  inbox.onAck(async (tx, actor, acked: AckedItem[]) => {
    const ids = [...new Set(acked.filter((a) => a.kind === "envelope" && a.messageId).map((a) => a.messageId!))];
    if (ids.length === 0) return [];
    const at = new Date();
    const changed = await tx.$queryRaw<{ id: string; conversationId: string; senderUserId: string; expiresAt: Date | null }[]>`
      UPDATE messages SET delivered_at = ${at}
      WHERE id = ANY(${ids}::uuid[]) AND recipient_user_id = ${actor.userId}::uuid AND delivered_at IS NULL
      RETURNING id::text, conversation_id::text AS "conversationId", sender_user_id::text AS "senderUserId",
                expires_at AS "expiresAt"`;
    return inbox.enqueue(tx, await receiptItems(tx, actor.userId, "DELIVERED", at, changed));
  });

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
