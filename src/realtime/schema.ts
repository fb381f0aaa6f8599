// Typing and presence: live only, nothing stored.
import { z } from "zod";
import { unauthenticated } from "../errors.ts";
import { MAX_PRESENCE_USERS, type PresencePayload, type TypingPayload } from "./service.ts";
import { builder } from "../graphql/builder.ts";
import { uuid } from "../graphql/validation.ts";

const TypingEvent = builder.objectRef<TypingPayload>("TypingEvent").implement({
  description: "Someone in the conversation started or stopped typing (live only, never stored).",
  fields: (t) => ({
    conversationId: t.exposeID("conversationId", { description: "The conversation or group" }),
    userId: t.exposeID("userId", { description: "Who is typing" }),
    deviceId: t.exposeInt("deviceId", { description: "On which of their devices" }),
    isTyping: t.exposeBoolean("isTyping", { description: "False when they stopped or the state lapsed" }),
    expiresAt: t.expose("expiresAt", {
      type: "DateTime",
      nullable: true,
      description: "when this typing state lapses unless refreshed; the server sends isTyping false then",
    }),
  }),
});

const PresenceEvent = builder.objectRef<PresencePayload>("PresenceEvent").implement({
  description: "Whether a user has a device connected right now.",
  fields: (t) => ({
    userId: t.exposeID("userId", { description: "Whose presence" }),
    online: t.exposeBoolean("online", { description: "True while any of their devices is connected" }),
    lastSeen: t.expose("lastSeen", { type: "DateTime", nullable: true, description: "when offline" }),
  }),
});

const userIdList = z.array(uuid).min(1).max(MAX_PRESENCE_USERS);

builder.mutationField("setTyping", (t) =>
  t.withAuth({ device: true }).boolean({
    description: "Participants only. A typing state lapses by itself unless refreshed within a few seconds.",
    args: {
      conversationId: t.arg.id({ required: true, validate: uuid, description: "A conversation or group you are in" }),
      isTyping: t.arg.boolean({ required: true, description: "True while typing; false when you stop" }),
    },
    resolve: (_root, { conversationId, isTyping }, ctx) =>
      ctx.services.realtime.setTyping(ctx.actor, String(conversationId), isTyping),
  }),
);

builder.queryField("presence", (t) =>
  t.withAuth({ device: true }).field({
    type: [PresenceEvent],
    description: "Presence of those users who share a conversation with you; others are left out.",
    args: { userIds: t.arg.idList({ required: true, validate: userIdList, description: `At most ${MAX_PRESENCE_USERS} users` }) },
    resolve: (_root, { userIds }, ctx) => ctx.services.realtime.presence(ctx.actor, userIds.map(String)),
  }),
);

builder.subscriptionFields((t) => ({
  typing: t.field({
    type: TypingEvent,
    description: "Typing in one conversation or group you take part in, live.",
    args: { conversationId: t.arg.id({ required: true, validate: uuid, description: "The conversation or group" }) },
    subscribe: (_root, { conversationId }, ctx) => {
      if (!ctx.actor) throw unauthenticated();
      return ctx.services.realtime.typingStream(ctx.actor, String(conversationId));
    },
    resolve: (e: TypingPayload) => e,
  }),
  presence: t.field({
    type: PresenceEvent,
    description: "The current state of each visible user, then every change.",
    args: { userIds: t.arg.idList({ required: true, validate: userIdList, description: `At most ${MAX_PRESENCE_USERS} users` }) },
    subscribe: (_root, { userIds }, ctx) => {
      if (!ctx.actor) throw unauthenticated();
      return ctx.services.realtime.presenceStream(ctx.actor, userIds.map(String));
    },
    resolve: (e: PresencePayload) => e,
  }),
}));
