// The device's queue as GraphQL: the InboxEvent union (one member per queue item kind; the groups domain adds
// GroupEvent to `members` below), the inbox subscription, the polling query and ackEnvelopes.
// Payloads arrive pre-shaped from src/inbox/service.ts: these resolvers only pick fields, no database reads.
import { unauthenticated } from "../errors.ts";
import { MAX_ACK_IDS, type EnvelopePayload, type InboxEventPayload } from "./service.ts";
import { builder } from "../graphql/builder.ts";
import { GroupEvent } from "../groups/schema.ts";
import { z } from "zod";

type Member<N extends InboxEventPayload["__typename"]> = Extract<InboxEventPayload, { __typename: N }>;

export const Envelope = builder.objectRef<EnvelopePayload>("Envelope").implement({
  description: "One device's copy of a message: opaque libsignal ciphertext.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "the queue item id: acknowledge it with ackEnvelopes" }),
    messageId: t.exposeID("messageId"),
    conversationId: t.exposeID("conversationId"),
    senderUserId: t.exposeID("senderUserId"),
    senderDeviceId: t.exposeInt("senderDeviceId"),
    type: t.exposeInt("type", { description: "libsignal CiphertextMessageType (Whisper = 2, PreKey = 3, ...)" }),
    body: t.expose("body", { type: "Bytes" }),
    serverTimestamp: t.expose("serverTimestamp", { type: "DateTime" }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "self-destruct time" }),
  }),
});

const EnvelopeEvent = builder.objectRef<Member<"EnvelopeEvent">>("EnvelopeEvent").implement({
  fields: (t) => ({
    id: t.exposeID("id"),
    envelope: t.expose("envelope", { type: Envelope }),
  }),
});

export const ReceiptKind = builder.enumType("ReceiptKind", { values: ["DELIVERED", "READ"] as const });

const ReceiptEvent = builder.objectRef<Member<"ReceiptEvent">>("ReceiptEvent").implement({
  description: "A recipient's device received (DELIVERED) or the recipient read (READ) a message you sent.",
  fields: (t) => ({
    id: t.exposeID("id"),
    messageId: t.exposeID("messageId", { description: "the first of messageIds" }),
    messageIds: t.exposeIDList("messageIds", {
      description: "every message this receipt is for, in send order: the receipts of one acknowledgement batch are one event",
    }),
    conversationId: t.exposeID("conversationId"),
    userId: t.exposeID("userId", { description: "the recipient" }),
    kind: t.expose("kind", { type: ReceiptKind }),
    at: t.expose("at", { type: "DateTime" }),
  }),
});

const MessageDeletedEvent = builder.objectRef<Member<"MessageDeletedEvent">>("MessageDeletedEvent").implement({
  description: "The sender deleted the message for everyone: remove it from the device.",
  fields: (t) => ({
    id: t.exposeID("id"),
    messageId: t.exposeID("messageId"),
    conversationId: t.exposeID("conversationId"),
    deletedByUserId: t.exposeID("deletedByUserId"),
  }),
});

const DeviceListChangedEvent = builder.objectRef<Member<"DeviceListChangedEvent">>("DeviceListChangedEvent").implement({
  description: "A user you talk with (or you) added or removed a device: refetch its devices before the next send.",
  fields: (t) => ({
    id: t.exposeID("id"),
    userId: t.exposeID("userId"),
  }),
});

const PreKeysLowEvent = builder.objectRef<Member<"PreKeysLowEvent">>("PreKeysLowEvent").implement({
  description: "This device's one-time pre-keys are below the low-water mark: upload more. Not queued; nothing to ack.",
  fields: (t) => ({
    oneTimePreKeys: t.exposeInt("oneTimePreKeys"),
    oneTimeKyberPreKeys: t.exposeInt("oneTimeKyberPreKeys"),
    lowWaterMark: t.exposeInt("lowWaterMark"),
  }),
});

const KeyPackagesLowEvent = builder.objectRef<Member<"KeyPackagesLowEvent">>("KeyPackagesLowEvent").implement({
  description: "This device's MLS key packages are below the low-water mark: upload more. Not queued; nothing to ack.",
  fields: (t) => ({
    available: t.exposeInt("available"),
    lowWaterMark: t.exposeInt("lowWaterMark"),
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
];

export const InboxEvent = builder.unionType("InboxEvent", {
  types: members,
  resolveType: (event) => (event as InboxEventPayload).__typename,
});

// Queue item ids are decimal; group event ids are "g:<groupId>:<seq>".
const ackIds = z.array(z.string().max(64)).max(MAX_ACK_IDS, { message: `must have at most ${MAX_ACK_IDS} items` });

builder.queryField("inbox", (t) =>
  t.withAuth({ device: true }).field({
    type: [InboxEvent],
    description: "The device's queue in order, for clients that poll; `after` is the last id seen.",
    args: {
      after: t.arg.id({ required: false, validate: z.string().max(20).nullish() }),
      first: t.arg.int({ required: false, defaultValue: 100, validate: z.number().int().min(1).max(500) }),
    },
    resolve: (_root, { after, first }, ctx) =>
      ctx.services.inbox.poll(ctx.actor, after == null ? null : String(after), first ?? 100),
  }),
);

builder.mutationField("ackEnvelopes", (t) =>
  t.withAuth({ device: true }).int({
    description: "Removes these items (envelopes or any other queued event) from this device's queue.",
    args: { ids: t.arg.idList({ required: true, validate: ackIds }) },
    resolve: (_root, { ids }, ctx) => ctx.services.inbox.ack(ctx.actor, ids.map(String)),
  }),
);

builder.subscriptionField("inbox", (t) =>
  t.field({
    type: InboxEvent,
    description: "Everything queued for this device in order, then live events; each item once.",
    subscribe: (_root, _args, ctx) => {
      if (!ctx.actor) throw unauthenticated();
      return ctx.services.inbox.stream(ctx.actor);
    },
    resolve: (event: InboxEventPayload) => event,
  }),
);

