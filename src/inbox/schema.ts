// The device's queue as GraphQL: the InboxEvent union (one member per queue item kind; the groups domain adds
// GroupEvent to `members` below), the inbox subscription, the polling query and ackEnvelopes.
// Payloads arrive pre-shaped from src/inbox/service.ts: these resolvers only pick fields, no database reads.
import { unauthenticated } from "../errors.ts";
import { MAX_ACK_IDS, type EnvelopePayload, type InboxEventPayload, type LiveEnvelopePayload } from "./service.ts";
import { builder } from "../graphql/builder.ts";
import { CONTEXT_FREE } from "../graphql/shared-results.ts";
import { GroupEvent } from "../groups/schema.ts";
import { z } from "zod";

type Member<N extends InboxEventPayload["__typename"]> = Extract<InboxEventPayload, { __typename: N }>;

export const Envelope = builder.objectRef<EnvelopePayload>("Envelope").implement({
  description: "One device's copy of a message: opaque libsignal ciphertext.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "the queue item id: acknowledge it with ackEnvelopes" }),
    messageId: t.exposeID("messageId", { description: "The message this copy belongs to (the same for every device)" }),
    conversationId: t.exposeID("conversationId", { description: "The 1:1 conversation" }),
    senderUserId: t.exposeID("senderUserId", { description: "Who sent it" }),
    senderDeviceId: t.exposeInt("senderDeviceId", { description: "From which of their devices" }),
    type: t.exposeInt("type", { description: "libsignal CiphertextMessageType (Whisper = 2, PreKey = 3, ...)" }),
    body: t.expose("body", { type: "Bytes", description: "The ciphertext for this device" }),
    serverTimestamp: t.expose("serverTimestamp", { type: "DateTime", description: "When the server stored the message" }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "self-destruct time" }),
  }),
});

const EnvelopeEvent = builder.objectRef<Member<"EnvelopeEvent">>("EnvelopeEvent").implement({
  description: "A message for this device: decrypt it, store it, then acknowledge the id.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The queue item id: acknowledge it with ackEnvelopes" }),
    envelope: t.expose("envelope", { type: Envelope, description: "The ciphertext and its metadata" }),
  }),
});

const LiveEnvelope = builder.objectRef<LiveEnvelopePayload>("LiveEnvelope").implement({
  description: "A live-only envelope (sendMessage with online: true): opaque libsignal ciphertext, never stored or queued.",
  fields: (t) => ({
    id: t.exposeID("id", { description: 'unique per envelope, starts with "live:"; acknowledging it is a no-op' }),
    messageId: t.exposeID("messageId", { description: "the id sendMessage answered with; no message is stored under it" }),
    senderUserId: t.exposeID("senderUserId", { description: "the sending user (from its token, never from input)" }),
    senderDeviceId: t.exposeInt("senderDeviceId", { description: "the sending device" }),
    type: t.exposeInt("type", { description: "libsignal CiphertextMessageType (Whisper = 2, PreKey = 3, ...)" }),
    body: t.expose("body", { type: "Bytes", description: "the ciphertext for this device" }),
    serverTimestamp: t.expose("serverTimestamp", { type: "DateTime", description: "when the server relayed it" }),
  }),
});

const LiveEnvelopeEvent = builder.objectRef<Member<"LiveEnvelopeEvent">>("LiveEnvelopeEvent").implement({
  description: "Sent while this device was connected (call signaling): delivered once, never replayed, nothing to ack.",
  fields: (t) => ({
    id: t.id({ description: "the envelope's id", resolve: (e) => e.envelope.id }),
    envelope: t.expose("envelope", { type: LiveEnvelope, description: "the ciphertext and its sender" }),
  }),
});

export const ReceiptKind = builder.enumType("ReceiptKind", {
  description: "What a receipt reports.",
  values: {
    DELIVERED: { description: "A device of the recipient acknowledged the message" },
    READ: { description: "The recipient marked it read (only when their read receipts are on)" },
  } as const,
});

const ReceiptEvent = builder.objectRef<Member<"ReceiptEvent">>("ReceiptEvent").implement({
  description: "A recipient's device received (DELIVERED) or the recipient read (READ) a message you sent.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The queue item id: acknowledge it with ackEnvelopes" }),
    messageId: t.exposeID("messageId", { description: "The message the receipt is about: the first of messageIds" }),
    messageIds: t.exposeIDList("messageIds", {
      description: "Every message this receipt is for, in send order: the receipts of one acknowledgement batch are one event",
    }),
    conversationId: t.exposeID("conversationId", { description: "Its conversation" }),
    userId: t.exposeID("userId", { description: "the recipient" }),
    kind: t.expose("kind", { type: ReceiptKind, description: "Delivered or read" }),
    at: t.expose("at", { type: "DateTime", description: "When it was delivered or read" }),
  }),
});

const MessageDeletedEvent = builder.objectRef<Member<"MessageDeletedEvent">>("MessageDeletedEvent").implement({
  description: "The sender deleted the message for everyone: remove it from the device.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The queue item id: acknowledge it with ackEnvelopes" }),
    messageId: t.exposeID("messageId", { description: "The deleted message" }),
    conversationId: t.exposeID("conversationId", { description: "Its conversation (or group)" }),
    deletedByUserId: t.exposeID("deletedByUserId", { description: "Its sender, who deleted it" }),
  }),
});

const DeviceListChangedEvent = builder.objectRef<Member<"DeviceListChangedEvent">>("DeviceListChangedEvent").implement({
  description: "A user you talk with (or you) added or removed a device: refetch its devices before the next send.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The queue item id: acknowledge it with ackEnvelopes" }),
    userId: t.exposeID("userId", { description: "Whose device list changed" }),
  }),
});

const PreKeysLowEvent = builder.objectRef<Member<"PreKeysLowEvent">>("PreKeysLowEvent").implement({
  description: "This device's one-time pre-keys are below the low-water mark: upload more. Not queued; nothing to ack.",
  fields: (t) => ({
    oneTimePreKeys: t.exposeInt("oneTimePreKeys", { description: "One-time EC pre-keys left" }),
    oneTimeKyberPreKeys: t.exposeInt("oneTimeKyberPreKeys", { description: "One-time Kyber pre-keys left" }),
    lowWaterMark: t.exposeInt("lowWaterMark", { description: "The count below which this event is sent" }),
  }),
});

const KeyPackagesLowEvent = builder.objectRef<Member<"KeyPackagesLowEvent">>("KeyPackagesLowEvent").implement({
  description: "This device's MLS key packages are below the low-water mark: upload more. Not queued; nothing to ack.",
  fields: (t) => ({
    available: t.exposeInt("available", { description: "Unclaimed key packages left (the last-resort one aside)" }),
    lowWaterMark: t.exposeInt("lowWaterMark", { description: "The count below which this event is sent" }),
  }),
});

/** Every member of the InboxEvent union. A new queue item kind adds its object type here. */
export const members = [
  EnvelopeEvent,
  ReceiptEvent,
  MessageDeletedEvent,
  DeviceListChangedEvent,
  PreKeysLowEvent,
  GroupEvent,
  KeyPackagesLowEvent,
  LiveEnvelopeEvent,
];

export const InboxEvent = builder.unionType("InboxEvent", {
  description: "Anything a device receives through its queue: messages, receipts, deletions, key and group events.",
  types: members,
  resolveType: (event) => (event as InboxEventPayload).__typename,
});

builder.queryField("inbox", (t) =>
  t.withAuth({ device: true }).field({
    type: [InboxEvent],
    description: "The device's queue in order, for clients that poll; `after` is the last id seen.",
    args: {
      after: t.arg.id({ required: false, validate: z.string().max(20).nullish(), description: "The last queue item id already seen" }),
      first: t.arg.int({
        required: false,
        defaultValue: 100,
        validate: z.number().int().min(1).max(500),
        description: "At most this many items (1 to 500)",
      }),
    },
    resolve: (_root, { after, first }, ctx) =>
      ctx.services.inbox.poll(ctx.actor, after == null ? null : String(after), first ?? 100),
  }),
);

builder.mutationField("ackEnvelopes", (t) =>
  t.withAuth({ device: true }).int({
    description: "Removes these items (envelopes or any other queued event) from this device's queue.",
    // Bounded by routeAcks (rules.ts), not the validation plugin: it copies the arguments of every call, and every
    // device acknowledges every envelope.
    args: { ids: t.arg.idList({ required: true, description: `Queue item ids, at most ${MAX_ACK_IDS}` }) },
    resolve: (_root, { ids }, ctx) => ctx.services.inbox.ack(ctx.actor, ids.map(String)),
  }),
);

builder.subscriptionField("inbox", (t) =>
  t.field({
    type: InboxEvent,
    description: "Everything queued for this device in order, then live events; each item once.",
    subscribe: (_root, _args, ctx) => {
      if (!ctx.actor) throw unauthenticated();
      return ctx.services.inbox.stream(ctx.actor, ctx.dropSlowConsumer);
    },
    // What an event resolves to does not depend on who receives it (graphql/shared-results.ts): keep it that way.
    resolve: (event: InboxEventPayload) => event,
    extensions: CONTEXT_FREE,
  }),
);

