// What an enumerating client gets through with the default limits (HARDENING.md "Queries, subscriptions, sockets"):
// 20 devices registered from one address each send operations of 15 aliased userByUsername lookups until refused;
// one device starts and stops inbox subscriptions until refused; then sockets are opened until the upgrade is refused.
// The burst takes seconds, inside one window of every limit. Run: npx tsx bench/enumeration.ts
import WebSocket from "ws";
import { InboxDocument } from "../src/client/generated/graphql.ts";
import { openWs } from "../src/client/transport.ts";
import { registerDevice } from "../test/helpers/accounts.ts";
import { socketFrom } from "../test/helpers/address.ts";
import { postRaw } from "../test/helpers/graphql.ts";
import { collect } from "../test/helpers/live.ts";
import { startTarget } from "./lib/target.ts";

const target = await startTarget({ RATE_LIMITS: "on", MAX_CONNECTIONS_PER_IP: "500" });
const url = target.node.url;
const refused = (r: { errors?: { extensions?: { code?: unknown } }[] }) => r.errors?.[0]?.extensions?.code === "RATE_LIMITED";
try {
  const devices = [];
  for (let i = 0; i < 20; i++) devices.push(await registerDevice(url, { oneTimeKeys: 0 }));
  let guess = 0;
  const perDevice: number[] = [];
  for (const d of devices) {
    let answered = 0;
    for (;;) {
      const fields = Array.from({ length: 15 }, (_, i) => `u${i}: userByUsername(username: "guess${guess++}") { id }`);
      const r = await postRaw(url, { query: `{ ${fields.join(" ")} }` }, d.token);
      if (refused(r)) break;
      answered += 15;
    }
    perDevice.push(answered);
  }

  const ws = openWs(url, devices[0].token, { lazy: false });
  let subscriptions = 0;
  for (;;) {
    const sub = collect(ws, InboxDocument);
    const ok = await sub.until((xs) => xs.length > 0, 30_000).then(() => true, () => false);
    sub.stop();
    if (!ok) break;
    subscriptions++;
  }
  await ws.dispose();

  const sockets: WebSocket[] = [];
  for (;;) {
    const s = await socketFrom("127.0.0.1", url);
    if (s.refusedWith) break;
    sockets.push(s.ws);
  }
  for (const s of sockets) s.terminate();

  console.log(
    JSON.stringify({
      lookupsAnsweredPerDevice: perDevice,
      lookupsAnsweredFromOneIp: perDevice.reduce((a, b) => a + b, 0),
      subscriptionsStartedBeforeRefusal: subscriptions,
      socketsOpenBeforeRefusal: sockets.length,
    }),
  );
} finally {
  await target.stop();
}
