// bench:push — wake-ups per second for N offline devices (default 10,000) with Web Push registrations, counted when
// the local https push service accepts each push. Two figures from real server processes (PostgreSQL + Redis):
// - drain: a node with PUSH_WORKER=false records one message to each device (N pending rows), then a sending node
//   starts on the same database and sends them: the worker's own rate (claim, encrypt, VAPID, HTTPS, mark sent);
// - end to end: more messages while a sending node runs, first send to last push (bounded by the send rate too).
// Baseline in the same run: raw `web-push` sendNotification to the same push service from this process, at the same
// concurrency (the library's encryption, VAPID signing and HTTPS; no queue, no database).
import https from "node:https";
import { readFileSync } from "node:fs";
import webpush from "web-push";
import { RegisterPushDocument, SendMessageDocument } from "../src/client/generated/graphql.ts";
import { HttpTransport } from "../src/client/transport.ts";
import { registerDevice } from "../test/helpers/accounts.ts";
import { makeCert, startPushService, Subscriber } from "../test/push/fake-browser.ts";
import { baseEnv, busPrefix, spawnNode } from "../test/helpers/server.ts";
import { registerMany } from "./lib/devices.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { startTarget } from "./lib/target.ts";

const DEVICES = Number(process.env.BENCH_PUSH_DEVICES ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_PUSH_CONCURRENCY ?? 32);
const SEND_CONCURRENCY = 32;

/** Runs fn(i) for i < count with `width` in flight. */
async function pool(count: number, width: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await fn(next++);
  }));
}

async function until(pred: () => boolean, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cert = makeCert();
const service = await startPushService(cert);
const vapid = webpush.generateVAPIDKeys();
const pushEnv = {
  NODE_EXTRA_CA_CERTS: cert.certFile,
  PUSH_ENDPOINT_ALLOWLIST: "127.0.0.1",
  PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
  PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
  PUSH_CONCURRENCY: String(CONCURRENCY),
  // Each phase's devices are woken once per run: the second phase must not be held back by the first's window.
  PUSH_COALESCE_SECONDS: "1",
};
// The node the load talks to records wake-ups only; senders are started beside it.
const target = await startTarget({ ...pushEnv, PUSH_WORKER: "false" });
try {
  console.log(`machine: ${JSON.stringify(machine())} (shared with other work: figures are indicative)`);
  console.log(`registering ${DEVICES} devices and their Web Push subscriptions…`);
  const devices = await registerMany(target.node.url, DEVICES, 0);
  const subs = devices.map(() => new Subscriber().keys());
  await pool(DEVICES, 16, async (i) => {
    const http = new HttpTransport(target.node.url, devices[i].token);
    await http.request(RegisterPushDocument, { input: { kind: "WEB_PUSH", endpoint: service.endpoint(`d${i}`), ...subs[i] } });
  });
  const alice = await registerDevice(target.node.url);

  const sendAll = (tag: string) =>
    pool(DEVICES, SEND_CONCURRENCY, async (i) => {
      const d = devices[i];
      await alice.http.request(SendMessageDocument, {
        input: {
          recipientUserId: d.userId,
          clientMessageId: `${tag}${i}`,
          messageType: "TEXT",
          envelopes: [{ deviceId: d.deviceId, registrationId: d.registrationId, type: 2, body: Buffer.from(`m${i}`).toString("base64") }],
        },
      });
    });
  const senderEnv = baseEnv(target.db, { ...pushEnv, BUS_PREFIX: busPrefix(), LOG_LEVEL: "warn", DATABASE_POOL_SIZE: "20" });

  // Drain: N pending rows, then a sending node starts.
  await sendAll("a");
  const before = service.received.length;
  const s0 = performance.now();
  const sender = await spawnNode(senderEnv);
  const s1 = performance.now();
  await until(() => service.received.length - before >= DEVICES, 600_000, "every wake-up (drain)");
  const s2 = performance.now();
  const drainedPushes = service.received.slice(before);
  const drained = new Set(drainedPushes.map((r) => r.path)).size;
  const firstPush = Math.min(...drainedPushes.map((r) => r.at));

  // End to end: the sending node runs while the messages arrive (the devices never connected, so all still offline).
  await new Promise((r) => setTimeout(r, 1100)); // past PUSH_COALESCE_SECONDS
  const before2 = service.received.length;
  const t0 = performance.now();
  await sendAll("b");
  const tSent = performance.now();
  await until(() => service.received.length - before2 >= DEVICES, 600_000, "every wake-up (end to end)");
  const tPushed = performance.now();
  const distinct = new Set(service.received.slice(before2).map((r) => r.path)).size;
  await sender.stop();

  // Baseline: raw web-push from this process to the same push service, same concurrency.
  const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: readFileSync(cert.certFile) });
  const rawBefore = service.received.length;
  const r0 = performance.now();
  await pool(DEVICES, CONCURRENCY, async (i) => {
    await webpush.sendNotification({ endpoint: service.endpoint(`raw${i}`), keys: subs[i] }, JSON.stringify({ kind: "wake" }), {
      vapidDetails: { subject: "mailto:bench@vignette.invalid", ...vapid },
      TTL: 86_400,
      urgency: "normal",
      topic: "wake",
      agent,
    });
  });
  const r1 = performance.now();
  agent.destroy();

  const seconds = (ms: number) => Math.round(ms) / 1000;
  const rate = (ms: number) => Math.round(DEVICES / (ms / 1000));
  const rows = [
    {
      path: "server, drain: N pending rows -> a sending node starts",
      "wake-ups/s": rate(s2 - firstPush),
      "seconds": seconds(s2 - firstPush),
      note: `first to last push; node start took ${seconds(s1 - s0)} s`,
      "devices pushed": drained,
    },
    {
      path: "server, end to end: send -> pending row -> worker -> push",
      "wake-ups/s": rate(tPushed - t0),
      "seconds": seconds(tPushed - t0),
      note: `sends ${rate(tSent - t0)}/s; last push ${seconds(tPushed - tSent)} s after last send`,
      "devices pushed": distinct,
    },
    {
      path: "raw web-push sendNotification (baseline)",
      "wake-ups/s": rate(r1 - r0),
      "seconds": seconds(r1 - r0),
      note: "from the bench process, no queue",
      "devices pushed": new Set(service.received.slice(rawBefore).map((r) => r.path)).size,
    },
  ];
  printTable(`bench:push — ${DEVICES} offline devices, push concurrency ${CONCURRENCY}`, rows);
  record("push", { ...target.mode, devices: DEVICES, concurrency: CONCURRENCY }, rows);
} finally {
  await target.stop();
  await service.close();
}
