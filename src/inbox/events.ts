// What a device's inbox hands out, shaped once for GraphQL (JSON-safe: bytes as base64, dates as ISO strings), and
// how each queue row kind becomes one. Pure: no database, no bus.
import { base64 } from "../bytes.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import type { GroupEventPayload } from "../groups/events.ts";
import type { PreKeyStatus } from "../keys/claims.ts";

/** A live event costs no database read per subscriber. `__typename` picks the member of the InboxEvent union. */
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
      /** Every message this receipt is for (messageId is the first): the receipts of one batch are coalesced. */
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
  // Group events come from the groups domain's own store (one row per group event, a cursor per device); their ids
  // ("g:<groupId>:<seq>") are acknowledged through ackEnvelopes like any other.
  | GroupEventPayload
  // Not queued (sendMessage with online: true): handed to connected devices only. No queue id, so streams neither
  // de-duplicate nor order it; its envelope's "live:" id acknowledges as a no-op.
  | { __typename: "LiveEnvelopeEvent"; id: null; expiresAt: null; envelope: LiveEnvelopePayload }
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

/** A live-only envelope: like EnvelopePayload, but nothing of it is stored (so it belongs to no stored message). */
export interface LiveEnvelopePayload {
  /** "live:<uuid>", unique per envelope (LIVE_ID_PREFIX). */
  id: string;
  /** The id sendMessage answered with; the same for every device the send reached. */
  messageId: string;
  senderUserId: string;
  senderDeviceId: number;
  type: number;
  body: string;
  serverTimestamp: string;
}

/** One device's copy of a live-only send: an envelope copy without queue retention. */
export type LiveCopy = Omit<EnvelopeCopy, "selfDestruct" | "expiresAt">;

/** An event for one device, to publish once its transaction has committed. */
export interface Delivery {
  userId: string;
  deviceId: number;
  event: InboxEventPayload;
  /** A call: a device that is away is woken at once (see src/push/). */
  urgent?: boolean;
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
  payload?: Record<string, string | number | boolean | null | string[]> | null;
  createdAt?: Date;
  expiresAt: Date;
}

/** What an acknowledgement removed, for the domains that act on it (messages marks delivery). */
export type AckedItem = Pick<InboxItem, "id" | "kind" | "messageId">;

/** One device's copy of a message, to queue in the statement that stores the message (see EnvelopeWrite). */
export interface EnvelopeCopy {
  userId: string;
  deviceId: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: number;
  ciphertextType: number;
  body: Uint8Array;
  selfDestruct: boolean;
  expiresAt: Date;
  /** A call (see Delivery.urgent). */
  urgent?: boolean;
}

/** One stored envelope queue row, as the statement that stored it reports it. */
export interface QueuedEnvelope {
  id: bigint | string;
  messageId: string;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: number;
  ciphertextType: number;
  body: Uint8Array;
  createdAt: Date;
  expiresAt: Date;
  /** The message self-destructs at expiresAt (otherwise expiresAt is only the queue's retention bound). */
  selfDestruct: boolean;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
type Payload = Record<string, string>;

export function envelopeEvent(e: QueuedEnvelope): InboxEventPayload {
  const id = e.id.toString();
  return {
    __typename: "EnvelopeEvent",
    id,
    expiresAt: iso(e.expiresAt),
    envelope: {
      id,
      messageId: e.messageId,
      conversationId: e.conversationId,
      senderUserId: e.senderUserId,
      senderDeviceId: e.senderDeviceId,
      type: e.ciphertextType,
      body: base64(e.body),
      serverTimestamp: e.createdAt.toISOString(),
      // The retention bound is not the message's timer: only a self-destruct time is shown as expiresAt.
      expiresAt: e.selfDestruct ? iso(e.expiresAt) : null,
    },
  };
}

/** The event a live-only envelope is published as; `id` is its "live:" id. */
export function liveEnvelopeEvent(id: string, c: LiveCopy, at: Date): InboxEventPayload {
  return {
    __typename: "LiveEnvelopeEvent",
    id: null,
    expiresAt: null,
    envelope: {
      id,
      messageId: c.messageId,
      senderUserId: c.senderUserId,
      senderDeviceId: c.senderDeviceId,
      type: c.ciphertextType,
      body: Buffer.from(c.body).toString("base64"),
      serverTimestamp: at.toISOString(),
    },
  };
}

/** How each queue item kind is shown to the device; a new kind adds its shaper here and its union member above. */
const shapers: Record<string, (row: InboxItem) => InboxEventPayload> = {
  envelope: (r) =>
    envelopeEvent({
      id: r.id,
      messageId: r.messageId!,
      conversationId: r.conversationId!,
      senderUserId: r.senderUserId!,
      senderDeviceId: r.senderDeviceId!,
      ciphertextType: r.ciphertextType!,
      body: r.body!,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      selfDestruct: !!(r.payload as Payload | null)?.selfDestruct,
    }),
  receipt: (r) => {
    const p = r.payload as { userId: string; kind: "DELIVERED" | "READ"; at: string; messageId?: string; messageIds?: string[] };
    return {
      __typename: "ReceiptEvent",
      id: r.id.toString(),
      expiresAt: iso(r.expiresAt),
      // A group message's id ("g:<groupId>:<seq>") is no uuid: it travels in the payload (the first one listed).
      messageId: r.messageId ?? p.messageId ?? p.messageIds![0],
      conversationId: r.conversationId!,
      userId: p.userId,
      kind: p.kind,
      at: p.at,
      messageIds: p.messageIds ?? [r.messageId ?? p.messageId!],
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

export function preKeysLowEvent(s: PreKeyStatus): InboxEventPayload {
  return {
    __typename: "PreKeysLowEvent",
    id: null,
    expiresAt: null,
    oneTimePreKeys: s.oneTimePreKeys,
    oneTimeKyberPreKeys: s.oneTimeKyberPreKeys,
    lowWaterMark: s.lowWaterMark,
  };
}

export function keyPackagesLowEvent(s: { available: number; lowWaterMark: number }): InboxEventPayload {
  return { __typename: "KeyPackagesLowEvent", id: null, expiresAt: null, available: s.available, lowWaterMark: s.lowWaterMark };
}
