// 1:1 messaging: sendMessage, status (markRead, read-receipt setting), deletion, and the conversation and message
// connections for the UI.
import { resolveCursorConnection } from "@pothos/plugin-relay";
import { z } from "zod";
import {
  MAX_CLIENT_MESSAGE_ID,
  MAX_EXPIRES_IN_SECONDS,
  MAX_MESSAGE_IDS,
  MESSAGE_TYPES,
  statusOf,
  type ConversationInfo,
  type MessageInfo,
} from "./service.ts";
import type { AuthedContext } from "../graphql/builder.ts";
import { builder } from "../graphql/builder.ts";
import { uuid } from "../graphql/validation.ts";

/** What each message type label means; the label is all the server learns of a message's content. */
const MESSAGE_TYPE_MEANINGS: Record<(typeof MESSAGE_TYPES)[number], string> = {
  TEXT: "Text",
  MEDIA: "A photo or video (an attachment pointer inside the ciphertext)",
  VOICE: "A voice note",
  FILE: "A file",
  LOCATION: "A shared location",
  CONTACT: "A shared contact card",
  POLL: "A poll or a vote on one",
  EVENT: "An event invitation or an RSVP",
  CALL: "Call signaling or a missed-call notice",
  STICKER: "A sticker",
  REACTION: "A reaction to another message",
  EDIT: "An edit of an earlier message",
  SYSTEM: "A client-generated notice (timer changed, safety number, ...)",
  OTHER: "Anything else, including kinds newer clients add",
};

export const MessageType = builder.enumType("MessageType", {
  description: "What kind of content the ciphertext holds: the one thing about it the server may see.",
  values: Object.fromEntries(MESSAGE_TYPES.map((v) => [v, { description: MESSAGE_TYPE_MEANINGS[v] }])) as Record<
    (typeof MESSAGE_TYPES)[number],
    { description: string }
  >,
});

const MessageStatus = builder.enumType("MessageStatus", {
  description: "SENT: stored. DELIVERED: a recipient device acknowledged it. READ: the recipient marked it read.",
  values: {
    SENT: { description: "Stored on the server" },
    DELIVERED: { description: "A device of the recipient acknowledged it" },
    READ: { description: "The recipient marked it read" },
  } as const,
});

// Its bounds (device 1-127, registration id 0-0x3fff, type 0-255, body size, one per device, the list's length) are
// checked by checkEnvelopes (rules.ts) when the send is prepared, not by per-field validators here: those walked
// every envelope of every send and were the server's largest allocator after envelop.
const EnvelopeInput = builder.inputType("EnvelopeInput", {
  description: "The ciphertext for one device.",
  fields: (t) => ({
    deviceId: t.int({ required: true, description: "The device it is for (1-127)" }),
    registrationId: t.int({
      required: true,
      description: "That device's registration id as the sender's session knows it (0-16383; a mismatch: STALE_DEVICES)",
    }),
    type: t.int({ required: true, description: "libsignal CiphertextMessageType (Whisper = 2, PreKey = 3, ...; 0-255)" }),
    body: t.field({ type: "Bytes", required: true, description: "The libsignal ciphertext, at most MAX_ENVELOPE_BYTES" }),
  }),
});

const SendMessageInput = builder.inputType("SendMessageInput", {
  description: "One message: a ciphertext per device of the recipient, and sync copies for your other devices.",
  fields: (t) => ({
    // Bounds of this and the fields below: prepareSend (rules.ts). Not the validation plugin: it copies the whole
    // input on every call, and this is the hottest mutation.
    recipientUserId: t.id({ required: true, description: "Who it is for (yourself: Note to Self)" }),
    clientMessageId: t.id({
      required: true,
      description: `Idempotency key per sending device (1-${MAX_CLIENT_MESSAGE_ID} characters): a repeat returns the first answer.`,
    }),
    messageType: t.field({ type: MessageType, required: true, description: "The content's kind, for status and push" }),
    expiresInSeconds: t.int({
      required: false,
      description: `Self-destruct: the message and every copy of it are deleted this long after sending (1-${MAX_EXPIRES_IN_SECONDS} s).`,
    }),
    envelopes: t.field({
      type: [EnvelopeInput],
      required: true,
      description: "One per active device of the recipient (for Note to Self: of your other devices); at most MAX_DEVICES_PER_USER.",
    }),
    syncEnvelopes: t.field({
      type: [EnvelopeInput],
      required: false,
      description: "One per other active device of the sender (sync copies); at most MAX_DEVICES_PER_USER.",
    }),
    online: t.boolean({
      required: false,
      description:
        "Live only (call signaling): delivered to the devices connected now, never stored or queued, never replayed. " +
        "The device-set checks still apply; the answer's messageId names no stored message.",
    }),
  }),
});

export const SendMessagePayload = builder.simpleObject("SendMessagePayload", {
  description: "The stored message (answered only after it is committed).",
  fields: (t) => ({
    messageId: t.id({ description: "The message's id, the same in every copy" }),
    serverTimestamp: t.field({ type: "DateTime", description: "When the server stored it" }),
  }),
});

export const Message = builder.objectRef<MessageInfo>("Message").implement({
  description: "A message's metadata and status; its content exists only as ciphertext in device queues.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The message id" }),
    conversationId: t.exposeID("conversationId", { description: "Its conversation (or group)" }),
    senderUserId: t.exposeID("senderUserId", { description: "Who sent it" }),
    senderDeviceId: t.exposeInt("senderDeviceId", { description: "From which of their devices" }),
    recipientUserId: t.exposeID("recipientUserId", { nullable: true, description: "null for a group message" }),
    clientMessageId: t.exposeID("clientMessageId", { nullable: true, description: "null for a group message" }),
    messageType: t.field({
      type: MessageType,
      nullable: true,
      description: "null for a group message: MLS senders declare nothing to the server",
      resolve: (m) => m.messageType as (typeof MESSAGE_TYPES)[number] | null,
    }),
    serverTimestamp: t.field({ type: "DateTime", description: "When the server stored it", resolve: (m) => m.createdAt }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "Self-destruct time, if any" }),
    status: t.field({
      type: MessageStatus,
      description: "for a group message always SENT (stored): members' delivery is tracked by their queue cursors",
      resolve: (m) => statusOf(m),
    }),
    deliveredAt: t.expose("deliveredAt", { type: "DateTime", nullable: true, description: "First acknowledged by a recipient device" }),
    readAt: t.expose("readAt", { type: "DateTime", nullable: true, description: "Marked read by the recipient" }),
  }),
});

export const Conversation = builder.objectRef<ConversationInfo>("Conversation").implement({
  description: "A 1:1 conversation: made by the first message between two users.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The conversation id (use it with messages and typing)" }),
    participantUserIds: t.idList({
      description: "Both users (one for Note to Self)",
      resolve: (c) => (c.userA === c.userB ? [c.userA] : [c.userA, c.userB]),
    }),
    peerUserId: t.id({
      description: "the other participant; yourself for Note to Self",
      resolve: (c, _args, ctx) => (c.userA === ctx.actor?.userId ? c.userB : c.userA),
    }),
    createdAt: t.expose("createdAt", { type: "DateTime", description: "When its first message was sent" }),
    lastMessageAt: t.expose("lastMessageAt", { type: "DateTime", description: "When its latest message was sent" }),
  }),
});

const AccountSettings = builder.simpleObject("AccountSettings", {
  description: "Settings of your account, shared by all its devices.",
  fields: (t) => ({ readReceipts: t.boolean({ description: "Whether your reads are stored and sent to senders" }) }),
});

const pageOf = (p: { before?: string | null; after?: string | null; limit: number; inverted: boolean }) => ({
  before: p.before ?? null,
  after: p.after ?? null,
  limit: p.limit,
  inverted: p.inverted,
});

builder.queryFields((t) => ({
  conversations: t.withAuth({ device: true }).connection({
    type: Conversation,
    description: "Your conversations, most recently active first.",
    resolve: (_root, args, ctx: AuthedContext) =>
      resolveCursorConnection<Promise<ConversationInfo[]>>(
        { args, toCursor: (c: ConversationInfo) => ctx.services.messages.conversationCursor(c), defaultSize: 50, maxSize: 200 },
        (page) => ctx.services.messages.conversations(ctx.actor, pageOf(page)),
      ),
  }, { name: "ConversationConnection" }, { name: "ConversationEdge" }),
  messages: t.withAuth({ device: true }).connection({
    type: Message,
    description: "A conversation's messages, newest first. A group's id lists the group's application messages this device may see.",
    args: { conversationId: t.arg.id({ required: true, validate: uuid, description: "A conversation or group id" }) },
    resolve: (_root, args, ctx: AuthedContext) =>
      resolveCursorConnection<Promise<MessageInfo[]>>(
        { args, toCursor: (m: MessageInfo) => m.seq.toString(), defaultSize: 50, maxSize: 200 },
        (page) => ctx.services.messages.messages(ctx.actor, String(args.conversationId), pageOf(page)),
      ),
  }, { name: "MessageConnection" }, { name: "MessageEdge" }),
  accountSettings: t.withAuth({ device: true }).field({
    type: AccountSettings,
    description: "Your account's settings.",
    resolve: async (_root, _args, ctx) => ({
      readReceipts: await ctx.services.messages.readReceiptsEnabled(ctx.actor.userId),
    }),
  }),
}));

builder.mutationFields((t) => ({
  sendMessage: t.withAuth({ device: true }).field({
    type: SendMessagePayload,
    description:
      "Stores one message for every device of the recipient (and your other devices); answers after commit. " +
      "With online: true it stores nothing and delivers to connected devices only.",
    args: { input: t.arg({ type: SendMessageInput, required: true, description: "The message and its envelopes" }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.messages.send(ctx.actor, {
        ...input,
        recipientUserId: String(input.recipientUserId),
        clientMessageId: String(input.clientMessageId),
      }),
  }),
  markRead: t.withAuth({ device: true }).int({
    description: "Marks messages sent to you read and tells their senders; 0 when your read receipts are off.",
    args: {
      messageIds: t.arg.idList({
        required: true,
        validate: z.array(uuid).max(MAX_MESSAGE_IDS),
        description: `Messages sent to you, at most ${MAX_MESSAGE_IDS}`,
      }),
    },
    resolve: (_root, { messageIds }, ctx) => ctx.services.messages.markRead(ctx.actor, messageIds.map(String)),
  }),
  deleteMessage: t.withAuth({ device: true }).boolean({
    description: "forEveryone false: hide from your history. true (sender only, within the window): delete for all.",
    args: {
      messageId: t.arg.id({ required: true, validate: uuid, description: "The message" }),
      forEveryone: t.arg.boolean({ required: true, description: "Delete for everyone (sender only), not just for you" }),
    },
    resolve: (_root, { messageId, forEveryone }, ctx) =>
      ctx.services.messages.deleteMessage(ctx.actor, String(messageId), forEveryone),
  }),
  setReadReceipts: t.withAuth({ device: true }).boolean({
    description: "Account setting: when off, your reads are neither stored nor sent. Returns the new value.",
    args: { enabled: t.arg.boolean({ required: true, description: "On or off" }) },
    resolve: (_root, { enabled }, ctx) => ctx.services.messages.setReadReceipts(ctx.actor, enabled),
  }),
}));

