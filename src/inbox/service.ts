// The durable per-device queue (inbox_items) and the live inbox stream over it. Everything a device must see goes
// through here: envelopes, receipts, deletions, device-list changes, and (from other sources, the groups domain)
// group events. Other domains queue items through the InboxQueue port, inside their own transaction, and publish
// after it commits.
import { randomUUID } from "node:crypto";
import { channels } from "../live/channels.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { InboxStream, type InboxStreamDeps } from "../live/inbox-stream.ts";
import { QuietGate, recheckInboxes } from "../live/recheck.ts";
import type { Feed } from "../live/feed.ts";
import { footprint } from "../live/footprint.ts";
import { batchesInFlight } from "../live/batcher.ts";
import type { PreKeyStatus } from "../keys/claims.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import {
  envelopeEvent,
  keyPackagesLowEvent,
  liveEnvelopeEvent,
  preKeysLowEvent,
  shape,
  type Delivery,
  type EnvelopeCopy,
  type InboxEventPayload,
  type LiveCopy,
  type NewInboxItem,
} from "./events.ts";
import { LIVE_ID_PREFIX, parseItemId, retentionExpiry, routeAcks } from "./rules.ts";
import { envelopeWrite, receiptWrite, type AckFollowUp, type InboxStore, type WrittenEnvelope } from "./store.ts";
import { createAckBatcher } from "./acks.ts";

export type { AckedItem, Delivery, EnvelopeCopy, EnvelopePayload, InboxEventPayload, LiveCopy, LiveEnvelopePayload, NewInboxItem } from "./events.ts";
export { MAX_ACK_IDS } from "./rules.ts";
export type { AckFollowUp, WrittenEnvelope } from "./store.ts";

/** What other domains use to queue items for devices and tell connected devices things (the messages domain). */
export interface InboxQueue {
  /** Adds items to their devices' queues in the caller's transaction (one INSERT); returns what to publish. */
  enqueue(tx: Tx, items: NewInboxItem[]): Promise<Delivery[]>;
  /** Live delivery, after commit. Never throws: a lost live event is re-read from the queue. */
  publish(deliveries: Delivery[]): void;
  /** The same for rows an acknowledgement statement queued (the groups domain's receipts). */
  publishQueued(items: InboxItem[]): void;
  /** Live-only envelopes (sendMessage online: true): to the devices connected now, never queued, never replayed. */
  publishLive(copies: LiveCopy[], at: Date): void;
  /** When an item queued at `from` is dropped unacknowledged. */
  retentionExpiry(from?: Date): Date;
  /** Envelope rows written in the statement that stores their messages, and their live events. */
  envelopes: typeof envelopeWrite & {
    deliveries(copies: EnvelopeCopy[], written: WrittenEnvelope[], now: Date): Delivery[];
  };
  /** Receipt rows written in an acknowledgement statement (see AckFollowUp). */
  receipts: typeof receiptWrite;
  removeEnvelopesOf(tx: Tx, messageId: string): Promise<void>;
  /** Live only (re-checked on every subscribe): the device should upload one-time pre-keys, or key packages. */
  preKeysLow(userId: string, deviceId: number, status: PreKeyStatus): void;
  keyPackagesLow(userId: string, deviceId: number, status: { available: number; lowWaterMark: number }): void;
  removeQueuesOfInactiveDevices(tx: Tx, userId: string): Promise<void>;
  /** The "items queued" port: told of every published delivery after commit (push wakes devices that are away). */
  onQueued(listener: (deliveries: Delivery[]) => void): void;
}

/**
 * Another store feeding every inbox stream (group events): it follows a device into the stream's Feed and takes
 * the acknowledgement of the ids it owns.
 */
export interface InboxSource {
  follow(actor: Actor, sink: Feed<InboxEventPayload>): { close(): unknown };
  owns(id: string): boolean;
  /** Returns how many of the ids were valid. */
  ack(actor: Actor, ids: string[]): Promise<number>;
}


export function createInboxQueue(deps: ServiceDeps, store: InboxStore): InboxQueue {
  const { bus, config } = deps;
  const keep = config.messaging.queueRetentionSeconds;
  const queued: ((deliveries: Delivery[]) => void)[] = [];
  const publish = (deliveries: Delivery[]) => {
    for (const d of deliveries) void bus.publish(channels.device(d.userId, d.deviceId), d.event);
    for (const l of queued) l(deliveries);
  };
  return {
    async enqueue(tx, items) {
      const rows = await store.insert(tx, items);
      return rows.map((r) => ({ userId: r.userId, deviceId: r.deviceId, event: shape(r) }));
    },
    publish,
    publishQueued: (items) => publish(items.map((r) => ({ userId: r.userId, deviceId: r.deviceId, event: shape(r) }))),
    publishLive: (copies, at) =>
      publish(copies.map((c) => ({ userId: c.userId, deviceId: c.deviceId, event: liveEnvelopeEvent(`${LIVE_ID_PREFIX}${randomUUID()}`, c, at) }))),
    retentionExpiry: (from = new Date()) => retentionExpiry(from, keep),
    envelopes: {
      ...envelopeWrite,
      deliveries(copies, written, now) {
        const key = (messageId: string, userId: string, deviceId: number) => `${messageId}|${userId}|${deviceId}`;
        const rows = new Map(written.map((w) => [key(w.messageId, w.userId, w.deviceId), w]));
        const out: Delivery[] = [];
        for (const c of copies) {
          const row = rows.get(key(c.messageId, c.userId, c.deviceId));
          if (!row) continue;
          const event = envelopeEvent({ ...c, id: row.id, conversationId: row.conversationId, createdAt: now });
          out.push({ userId: c.userId, deviceId: c.deviceId, event, urgent: c.urgent });
        }
        return out;
      },
    },
    receipts: receiptWrite,
    removeEnvelopesOf: (tx, messageId) => store.removeEnvelopesOf(tx, messageId),
    removeQueuesOfInactiveDevices: (tx, userId) => store.removeQueuesOfInactiveDevices(tx, userId),
    preKeysLow: (userId, deviceId, status) => publish([{ userId, deviceId, event: preKeysLowEvent(status) }]),
    keyPackagesLow: (userId, deviceId, status) => publish([{ userId, deviceId, event: keyPackagesLowEvent(status) }]),
    onQueued: (listener) => void queued.push(listener),
  };
}

export type InboxService = ReturnType<typeof createInboxService>;

export function createInboxService(
  deps: ServiceDeps,
  ports: {
    store: InboxStore;
    queue: InboxQueue;
    keyStatus(actor: Actor): Promise<PreKeyStatus>;
    /** The messages domain marks delivery and queues the receipts, in the acknowledging statement. */
    acknowledged: AckFollowUp;
    sources: InboxSource[];
  },
) {
  const { bus, config, logger } = deps;
  const { store, queue, sources } = ports;
  // A quarter of the pool for acknowledgement batches.
  const acks = createAckBatcher({
    store,
    followUp: ports.acknowledged,
    maxConcurrent: batchesInFlight(config.database, 4),
    retentionExpiry: (from) => queue.retentionExpiry(from),
    queued: (items) => queue.publishQueued(items),
    onBatch: (n) => deps.observeBatch?.("acks", n),
  });
  const streamDeps: InboxStreamDeps = {
    bus,
    logger,
    limit: config.messaging.inboxBufferLimit,
    budget: { maxBytes: config.messaging.inboxBufferBytes, sizeOf: footprint },
    read,
    keyStatus: ports.keyStatus,
    preKeysLowEvent,
    sources: sources.map((s) => s.follow),
    open: new Set(),
  };
  // Live events missed while the bus was away are in the queues: every open stream reads its own again.
  bus.onReconnect(() => {
    for (const s of streamDeps.open) s.resync();
  });

  async function read(actor: Actor, opts: { after?: bigint; limit: number }): Promise<InboxEventPayload[]> {
    return (await store.read(actor, opts.after ?? 0n, opts.limit, new Date())).map(shape);
  }

  /** The queue for polling clients, in order, after the given item id. */
  async function poll(actor: Actor, after: string | null | undefined, limit: number) {
    return read(actor, { after: after ? parseItemId(after) : 0n, limit });
  }

  /** Removes the device's own items with these ids (of any kind, other sources' too); returns how many there were. */
  async function ack(actor: Actor, ids: string[]): Promise<number> {
    const { own, routed } = routeAcks(ids, sources);
    let count = 0;
    for (const [source, mine] of routed) count += await source.ack(actor, mine);
    if (own.length === 0) return count;
    return count + (await acks.submit({ actor, ids: own }));
  }

  /** The device's inbox: everything queued, in order, then live events (see InboxStream). onOverflow: see Feed. */
  function stream(actor: Actor, onOverflow?: () => void): AsyncIterableIterator<InboxEventPayload> {
    return new InboxStream(streamDeps, actor, onOverflow).start();
  }

  /** Deletes expired queue items (self-destructed or past retention). */
  async function sweep(): Promise<number> {
    return store.sweep(new Date());
  }

  // Live events lost without a reconnect (a failed publish, a publisher that died after its commit): every open
  // stream's queue is looked at on a timer, in one statement, and a stream that missed an item reads it again.
  const gate = new QuietGate();
  const recheck = () => recheckInboxes(streamDeps.open, store, gate);

  return { poll, ack, stream, sweep, recheck, depth: store.depth };
}
