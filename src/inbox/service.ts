// The durable per-device queue (inbox_items) and the live inbox stream over it. Everything a device must see goes
// through here: envelopes, receipts, deletions, device-list changes, and (from the groups service) group events.
// Other services write items with enqueue() inside their own transaction and call publish() after it commits.
import type { InboxItem } from "../generated/prisma/client.ts";
import { badInput } from "../errors.ts";
import { channels } from "../live/channels.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { InboxStream, type InboxSource, type InboxStreamDeps } from "../live/inbox-stream.ts";
import type { GroupEventPayload } from "../groups/service.ts";
import { bytes, type PreKeyStatus } from "../keys/service.ts";
import { createAckBatcher, type AckFollowUp } from "./acks.ts";

/** What a subscriber receives, already shaped for GraphQL (JSON-safe: bytes as base64, dates as ISO strings), so
 * a live event costs no database read per subscriber. `__typename` picks the member of the InboxEvent union. */
export type InboxEventPayload =
  | { __typename: "EnvelopeEvent"; id: string; expiresAt: string | null; envelope: EnvelopePayload }
  | {
      __typename: "ReceiptEvent";
      id: string;
      expiresAt: string | null;
      messageId: string;
      conversationId: string;
      userId: string;
      kind: "DELIVERED" | "READ";
      at: string;
      /** Every message this receipt is for (messageId is the first): receipts of one batch are coalesced. */
      messageIds: string[];
    }
  | {
      __typename: "MessageDeletedEvent";
      id: string;
      expiresAt: string | null;
      messageId: string;
      conversationId: string;
      deletedByUserId: string;
    }
  | { __typename: "DeviceListChangedEvent"; id: string; expiresAt: string | null; userId: string }
  // Group events come from the groups service's own store (one row per group event, a cursor per device); their ids
  // ("g:<groupId>:<seq>") are acknowledged through ackEnvelopes like any other.
  | GroupEventPayload
  // Not queued: like PreKeysLowEvent, for MLS key packages.
  | { __typename: "KeyPackagesLowEvent"; id: null; expiresAt: null; available: number; lowWaterMark: number }
  // Not queued: a state the device is told about on subscribe and when it changes, so it has no id to acknowledge.
  | {
      __typename: "PreKeysLowEvent";
      id: null;
      expiresAt: null;
      oneTimePreKeys: number;
      oneTimeKyberPreKeys: number;
      lowWaterMark: number;
    };

export interface EnvelopePayload {
  id: string;
  messageId: string;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: number;
  type: number;
  body: string;
  serverTimestamp: string;
  expiresAt: string | null;
}

/** A row to add to one device's queue. `payload` is small metadata (receipts, deletions), never ciphertext. */
export interface NewInboxItem {
  userId: string;
  deviceId: number;
  kind: string;
  messageId?: string | null;
  conversationId?: string | null;
  senderUserId?: string | null;
  senderDeviceId?: number | null;
  ciphertextType?: number | null;
  body?: Uint8Array | null;
  payload?: Record<string, string | number | boolean | null> | null;
  createdAt?: Date;
  expiresAt: Date;
}

/** An event for one device, to publish once its transaction has committed. */
export interface Delivery {
  userId: string;
  deviceId: number;
  event: InboxEventPayload;
}


const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
type Payload = Record<string, string>;
type ReceiptPayload = { userId: string; kind: "DELIVERED" | "READ"; at: string; messageIds?: string[] };

/**
 * How each queue item kind is shown to the device. One entry per kind: a service that queues a new kind (the groups
 * service's group events) adds its shaper here and its member to the InboxEvent union in src/inbox/schema.ts.
 */
export const shapers: Record<string, (row: InboxItem) => InboxEventPayload> = {
  envelope: (r) => ({
    __typename: "EnvelopeEvent",
    id: r.id.toString(),
    expiresAt: iso(r.expiresAt),
    envelope: {
      id: r.id.toString(),
      messageId: r.messageId!,
      conversationId: r.conversationId!,
      senderUserId: r.senderUserId!,
      senderDeviceId: r.senderDeviceId!,
      type: r.ciphertextType!,
      body: Buffer.from(r.body!).toString("base64"),
      serverTimestamp: r.createdAt.toISOString(),
      // The retention bound is not the message's timer: only a self-destruct time is shown as expiresAt.
      expiresAt: (r.payload as Payload | null)?.selfDestruct ? iso(r.expiresAt) : null,
    },
  }),
  receipt: (r) => {
    const p = r.payload as ReceiptPayload;
    return {
      __typename: "ReceiptEvent",
      id: r.id.toString(),
      expiresAt: iso(r.expiresAt),
      messageId: r.messageId!,
      conversationId: r.conversationId!,
      userId: p.userId,
      kind: p.kind,
      at: p.at,
      messageIds: p.messageIds ?? [r.messageId!],
    };
  },
  deleted: (r) => ({
    __typename: "MessageDeletedEvent",
    id: r.id.toString(),
    expiresAt: iso(r.expiresAt),
    messageId: r.messageId!,
    conversationId: r.conversationId!,
    deletedByUserId: (r.payload as Payload).deletedByUserId,
  }),
  device_list: (r) => ({
    __typename: "DeviceListChangedEvent",
    id: r.id.toString(),
    expiresAt: iso(r.expiresAt),
    userId: (r.payload as Payload).userId,
  }),
};

export function shape(row: InboxItem): InboxEventPayload {
  const shaper = shapers[row.kind];
  if (!shaper) throw new Error(`no shaper for inbox item kind ${row.kind}`);
  return shaper(row);
}

export const MAX_ACK_IDS = 1000;

export type InboxService = ReturnType<typeof createInboxService>;

export function createInboxService(deps: ServiceDeps, keys: { status(actor: Actor): Promise<PreKeyStatus> }) {
  const { prisma, sql, bus, config, logger } = deps;
  let ackFollowUp: AckFollowUp | null = null;
  // As many acknowledgement batches in flight as send batches (a quarter of the pool each); PGlite has one.
  const acks = createAckBatcher({
    sql,
    maxConcurrent: config.database.kind === "postgres" ? Math.max(1, Math.floor(config.database.poolSize / 4)) : 1,
    retentionExpiry: (from) => retentionExpiry(from),
    followUp: () => ackFollowUp,
    queued: (items) => publish(items.map((r) => ({ userId: r.userId, deviceId: r.deviceId, event: shape(r) }))),
  });
  // Other stores that feed the inbox (group events): merged into every stream, their ids acked by prefix.
  const sources: InboxSource[] = [];
  const ackRoutes: { prefix: string; ack: (actor: Actor, ids: string[]) => Promise<number> }[] = [];
  const streamDeps: InboxStreamDeps = {
    bus,
    logger,
    limit: config.messaging.inboxBufferLimit,
    read,
    keyStatus: (actor) => keys.status(actor),
    preKeysLowEvent,
    sources,
    open: new Set(),
  };
  // Live events missed while the bus was away are in the queues: every open stream reads its own again.
  bus.onReconnect(() => {
    for (const s of streamDeps.open) s.resync();
  });

  function addSource(prefix: string, source: InboxSource, ack: (actor: Actor, ids: string[]) => Promise<number>): void {
    sources.push(source);
    ackRoutes.push({ prefix, ack });
  }

  /** Adds items to their devices' queues in the caller's transaction (one INSERT); returns what to publish. */
  async function enqueue(tx: Tx, items: NewInboxItem[]): Promise<Delivery[]> {
    if (items.length === 0) return [];
    const rows = await tx.inboxItem.createManyAndReturn({
      data: items.map((i) => ({
        userId: i.userId,
        deviceId: i.deviceId,
        kind: i.kind,
        messageId: i.messageId ?? null,
        conversationId: i.conversationId ?? null,
        senderUserId: i.senderUserId ?? null,
        senderDeviceId: i.senderDeviceId ?? null,
        ciphertextType: i.ciphertextType ?? null,
        body: i.body ? bytes(i.body) : null,
        payload: i.payload ?? undefined,
        ...(i.createdAt ? { createdAt: i.createdAt } : {}),
        expiresAt: i.expiresAt,
      })),
    });
    return rows.map((r) => ({ userId: r.userId, deviceId: r.deviceId, event: shape(r) }));
  }

  /** Live delivery, after commit. Never throws: a lost live event is re-read from the queue. */
  function publish(deliveries: Delivery[]): void {
    for (const d of deliveries) void bus.publish(channels.device(d.userId, d.deviceId), d.event);
  }

  function retentionExpiry(from = new Date()): Date {
    return new Date(from.getTime() + config.messaging.queueRetentionSeconds * 1000);
  }

  async function read(actor: Actor, opts: { after?: bigint; limit: number }): Promise<InboxEventPayload[]> {
    // Raw: every inbox subscription reads its queue once on connect, and a raw statement allocates well under what
    // findMany does per call (measured with the sampling heap profiler), garbage each connect would leave behind.
    const rows = await prisma.$queryRaw<InboxItem[]>`
      SELECT id, user_id::text AS "userId", device_id AS "deviceId", kind, message_id::text AS "messageId",
        conversation_id::text AS "conversationId", sender_user_id::text AS "senderUserId",
        sender_device_id AS "senderDeviceId", ciphertext_type AS "ciphertextType", body, payload,
        created_at AS "createdAt", expires_at AS "expiresAt"
      FROM inbox_items
      WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId} AND id > ${opts.after ?? 0n}::bigint
        AND expires_at > ${new Date()}
      ORDER BY id LIMIT ${opts.limit}`;
    return rows.map(shape);
  }

  function parseId(id: string): bigint {
    if (!/^[0-9]{1,19}$/.test(id)) throw badInput("queue item ids are decimal integers");
    return BigInt(id);
  }

  /** The queue for polling clients, in order, after the given item id. */
  async function poll(actor: Actor, after: string | null | undefined, limit: number) {
    return read(actor, { after: after ? parseId(after) : 0n, limit });
  }

  /** Another domain's part of every acknowledgement (the messages service marks delivery), in the same statement. */
  function onAck(followUp: AckFollowUp): void {
    if (ackFollowUp) throw new Error("one acknowledgement follow-up only");
    ackFollowUp = followUp;
  }

  /** Removes the device's own items with these ids (of any kind); returns how many there were. */
  async function ack(actor: Actor, ids: string[]): Promise<number> {
    if (ids.length > MAX_ACK_IDS) throw badInput(`at most ${MAX_ACK_IDS} ids per call`);
    let routed = 0;
    for (const r of ackRoutes) {
      const mine = ids.filter((id) => id.startsWith(r.prefix));
      if (mine.length) routed += await r.ack(actor, mine);
    }
    ids = ids.filter((id) => !ackRoutes.some((r) => id.startsWith(r.prefix)));
    const wanted = [...new Set(ids.map(parseId))];
    if (wanted.length === 0) return routed;
    return (await acks.submit({ actor, ids: wanted })) + routed;
  }

  /** Told by the key directory: the device should upload one-time keys. Live only; re-checked on every subscribe. */
  function preKeysLow(userId: string, deviceId: number, status: PreKeyStatus): void {
    publish([{ userId, deviceId, event: preKeysLowEvent(status) }]);
  }

  function preKeysLowEvent(s: PreKeyStatus): InboxEventPayload {
    return {
      __typename: "PreKeysLowEvent",
      id: null,
      expiresAt: null,
      oneTimePreKeys: s.oneTimePreKeys,
      oneTimeKyberPreKeys: s.oneTimeKyberPreKeys,
      lowWaterMark: s.lowWaterMark,
    };
  }

  /** The device's inbox: everything queued, in order, then live events (see InboxStream). */
  function stream(actor: Actor): AsyncIterableIterator<InboxEventPayload> {
    return new InboxStream(streamDeps, actor).start();
  }

  /** Deletes expired queue items (self-destructed or past retention). */
  async function sweep(): Promise<number> {
    const { count } = await prisma.inboxItem.deleteMany({ where: { expiresAt: { lte: new Date() } } });
    return count;
  }

  return { enqueue, publish, retentionExpiry, poll, ack, onAck, addSource, preKeysLow, stream, sweep };
}
