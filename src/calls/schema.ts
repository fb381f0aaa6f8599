// Calls: the turnServers query (TURN REST API credentials). Call signaling itself is sendMessage with online: true.
import { builder } from "../graphql/builder.ts";
import type { TurnServerInfo } from "./service.ts";

const TurnServer = builder.objectRef<TurnServerInfo>("TurnServer").implement({
  description: "A TURN (or STUN) server for WebRTC, shaped like RTCIceServer; the credential expires on its own.",
  fields: (t) => ({
    urls: t.exposeStringList("urls", { description: "stun:, turn: or turns: URLs" }),
    username: t.exposeString("username", { description: '"<unix expiry>:<userId>" (TURN REST API)' }),
    credential: t.exposeString("credential", { description: "base64(HMAC-SHA1(shared secret, username))" }),
    ttlSeconds: t.exposeInt("ttlSeconds", { description: "how long the credential was issued for" }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", description: "when the TURN server stops accepting it" }),
  }),
});

builder.queryField("turnServers", (t) =>
  t.withAuth({ device: true }).field({
    type: [TurnServer],
    description: "TURN servers with fresh credentials for a call; empty when the server has none configured. Rate-limited.",
    resolve: (_root, _args, ctx) => ctx.services.calls.turnServers(ctx.actor),
  }),
);
