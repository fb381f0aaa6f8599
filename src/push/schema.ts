// The GraphQL face of push wake-ups: register and unregister this device's push address, and what a client needs
// to subscribe (the VAPID public key, the gateway names).
import { builder } from "../graphql/builder.ts";

const PushKind = builder.enumType("PushKind", {
  description: "How the server wakes a device that is away",
  values: {
    WEB_PUSH: { description: "A browser PushSubscription (RFC 8030 Web Push with VAPID and aes128gcm)" },
    GATEWAY: { description: "An opaque device token for a push gateway named in the server's configuration" },
  },
});

const PushRegistrationInput = builder.inputType("PushRegistrationInput", {
  description: "WEB_PUSH takes endpoint, p256dh and auth (PushSubscription.toJSON()); GATEWAY takes gateway and token",
  fields: (t) => ({
    kind: t.field({ type: PushKind, required: true, description: "Which of the two kinds this is" }),
    endpoint: t.string({ required: false, description: "The push service URL: https, on the server's allow-list" }),
    p256dh: t.string({ required: false, description: "The subscription's P-256 public key, base64url (65 bytes)" }),
    auth: t.string({ required: false, description: "The subscription's auth secret, base64url (16 bytes)" }),
    gateway: t.string({ required: false, description: "The gateway's name, one of pushConfig.gateways" }),
    token: t.string({ required: false, description: "The device token the gateway knows the device by" }),
  }),
});

const PushConfig = builder.simpleObject("PushConfig", {
  description: "What a client needs to register for wake-ups",
  fields: (t) => ({
    vapidPublicKey: t.string({
      nullable: true,
      description: "The applicationServerKey for PushManager.subscribe (base64url); null when Web Push is off",
    }),
    gateways: t.stringList({ description: "Names of the push gateways a GATEWAY registration may name" }),
  }),
});

builder.queryField("pushConfig", (t) =>
  t.field({
    type: PushConfig,
    description: "The VAPID public key and gateway names (no authentication needed)",
    resolve: (_root, _args, ctx) => ctx.services.push.pushConfig(),
  }),
);

builder.mutationFields((t) => ({
  registerPush: t.withAuth({ device: true }).boolean({
    description:
      "Sets this device's push address (one per device; a new one replaces the old). Pushes say only 'wake up': " +
      "no sender, no content, no conversation.",
    args: { input: t.arg({ type: PushRegistrationInput, required: true, description: "The push address" }) },
    resolve: (_root, { input }, ctx) => ctx.services.push.register(ctx.actor, input),
  }),
  unregisterPush: t.withAuth({ device: true }).boolean({
    description: "Removes this device's push address; false when it had none",
    resolve: (_root, _args, ctx) => ctx.services.push.unregister(ctx.actor),
  }),
}));
