// Persisted-and-delivered send rate: P sender/receiver pairs, each receiver subscribed to its inbox over graphql-ws,
// each sender keeping W sendMessage calls in flight over HTTP. Run against real services, e.g.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
//     npx tsx bench/messages-send.ts [pairs=20] [perSender=50] [window=4]
import { randomUUID } from "node:crypto";
import { InboxDocument, SendMessageDocument } from "../src/client/generated/graphql.ts";
import { openWs } from "../src/client/transport.ts";
import { registerDevice } from "../test/helpers/accounts.ts";
import { collect } from "../test/helpers/live.ts";
import { startServer } from "../test/helpers/server.ts";

const [pairs, perSender, window] = process.argv.slice(2).map(Number);
const P = pairs || 20, N = perSender || 50, W = window || 4;
const server = await startServer({ LOG_LEVEL: "silent" });
try {
  const devices = [];
  for (let i = 0; i < P; i++) {
    devices.push({
      from: await registerDevice(server.url, { oneTimeKeys: 0 }),
      to: await registerDevice(server.url, { oneTimeKeys: 0 }),
    });
  }
  const body = Buffer.alloc(200, 1).toString("base64");
  const subs = devices.map(({ to }) => {
    const ws = openWs(server.url, to.token);
    return { ws, inbox: collect(ws, InboxDocument) };
  });
  await new Promise((r) => setTimeout(r, 500));
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    devices.map(async ({ from, to }) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: W }, async () => {
          while (next < N) {
            next++;
            const s = performance.now();
            await from.http.request(SendMessageDocument, {
              input: {
                recipientUserId: to.userId,
                clientMessageId: randomUUID(),
                messageType: "TEXT",
                envelopes: [{ deviceId: 1, registrationId: to.signal.registrationId, type: 2, body }],
              },
            });
            latencies.push(performance.now() - s);
          }
        }),
      );
    }),
  );
  const sentMs = performance.now() - t0;
  const envelopes = (xs: { inbox: { __typename: string } }[]) => xs.filter((x) => x.inbox.__typename === "EnvelopeEvent").length;
  await Promise.all(subs.map((s) => s.inbox.until((xs) => envelopes(xs) >= N, 120_000)));
  const deliveredMs = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.floor((latencies.length - 1) * p)].toFixed(1);
  console.log(
    JSON.stringify({
      database: server.app.services.deps.config.database.kind,
      bus: server.app.services.deps.bus.kind,
      pairs: P,
      perSender: N,
      window: W,
      sends: P * N,
      sendsPerSecond: Math.round((P * N) / (sentMs / 1000)),
      allDeliveredPerSecond: Math.round((P * N) / (deliveredMs / 1000)),
      p50ms: pct(0.5),
      p99ms: pct(0.99),
    }),
  );
  for (const s of subs) {
    s.inbox.stop();
    await s.ws.dispose();
  }
} finally {
  await server.close();
}
