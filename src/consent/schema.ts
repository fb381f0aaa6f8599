// Consent as GraphQL: message requests, blocking, reports and the presence privacy setting.
import { builder } from "../graphql/builder.ts";
import { shortText, uuid } from "../graphql/validation.ts";
import { MAX_REPORT_EXCERPT, MAX_REPORT_REASON, PRESENCE_VISIBILITIES, type MessageRequest } from "./service.ts";

const PresenceVisibility = builder.enumType("PresenceVisibility", {
  description: "Who sees your presence and last seen",
  values: {
    EVERYONE: { description: "Any user who asks, except those you blocked" },
    CONTACTS: { description: "Users you wrote to or accepted, and fellow group members (the default)" },
    NOBODY: { description: "Only your own devices" },
  } satisfies Record<(typeof PRESENCE_VISIBILITIES)[number], unknown>,
});

const MessageRequestRef = builder.objectRef<MessageRequest>("MessageRequest").implement({
  description: "Someone wrote to you whom you have not written to, accepted or blocked: they see none of your live state",
  fields: (t) => ({
    userId: t.exposeID("userId", { description: "Who wrote" }),
    since: t.expose("since", { type: "DateTime", description: "When they first wrote" }),
  }),
});

const userArg = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0], description: string) =>
  t.arg.id({ required: true, validate: uuid, description });

builder.queryFields((t) => ({
  messageRequests: t.withAuth({ device: true }).field({
    type: [MessageRequestRef],
    description: "Pending message requests, oldest first (at most 200)",
    resolve: (_root, _args, ctx) => ctx.services.consent.requests(ctx.actor),
  }),
  presencePrivacy: t.withAuth({ device: true }).field({
    type: PresenceVisibility,
    description: "Who sees your presence and last seen",
    resolve: (_root, _args, ctx) => ctx.services.consent.presenceVisibility(ctx.actor),
  }),
}));

builder.mutationFields((t) => ({
  acceptMessageRequest: t.withAuth({ device: true }).boolean({
    description: "Accepts a user's message request: they may see your presence, typing and receipts from now on",
    args: { userId: userArg(t, "Who wrote to you") },
    resolve: (_root, { userId }, ctx) => ctx.services.consent.acceptRequest(ctx.actor, String(userId)),
  }),
  blockUser: t.withAuth({ device: true }).boolean({
    description: "Silently drops the user's messages, typing and group invitations to you; neither sees the other's presence",
    args: { userId: userArg(t, "Whom to block") },
    resolve: (_root, { userId }, ctx) => ctx.services.consent.block(ctx.actor, String(userId)),
  }),
  unblockUser: t.withAuth({ device: true }).boolean({
    description: "Lifts a block; what was dropped meanwhile stays dropped",
    args: { userId: userArg(t, "Whom to unblock") },
    resolve: (_root, { userId }, ctx) => ctx.services.consent.unblock(ctx.actor, String(userId)),
  }),
  reportMessage: t.withAuth({ device: true }).boolean({
    description: "Reports a message you received or sent to the operators: its ids, your reason, and an excerpt only if you give one",
    args: {
      messageId: t.arg.id({ required: true, validate: uuid, description: "A 1:1 message you can see" }),
      reason: t.arg.string({ required: false, validate: shortText(MAX_REPORT_REASON), description: `At most ${MAX_REPORT_REASON} characters` }),
      excerpt: t.arg.string({
        required: false,
        validate: shortText(MAX_REPORT_EXCERPT),
        description: `Plaintext you choose to reveal (the server has none), at most ${MAX_REPORT_EXCERPT} characters`,
      }),
    },
    resolve: (_root, { messageId, reason, excerpt }, ctx) =>
      ctx.services.consent.report(ctx.actor, String(messageId), reason, excerpt),
  }),
  setPresencePrivacy: t.withAuth({ device: true }).field({
    type: PresenceVisibility,
    description: "Sets who sees your presence and last seen",
    args: { visibility: t.arg({ type: PresenceVisibility, required: true, description: "EVERYONE, CONTACTS or NOBODY" }) },
    resolve: (_root, { visibility }, ctx) => ctx.services.consent.setPresenceVisibility(ctx.actor, visibility),
  }),
}));
