// bench:connections — authenticated devices each holding an `inbox` subscription over graphql-ws, stepped up toward
// 100,000 on one node: connect rate, server memory per held connection (VmRSS of the server process), and delivery
// latency of a message to random connected devices while all are held. Sockets come from several loopback source
// addresses (127.0.0.1-4) so that client ports do not run out. Baseline: the same number of bare `ws` connections
// to a bare ws server, its memory per connection and connect rate.
// Each socket is a file on both ends: the step list stops below this shell's `ulimit -n` (see BENCHMARKS.md).
import { envelopeNumber, numberedBody } from "./lib/numbered-body.ts";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { InboxDocument, SendMessageDocument } from "../src/client/generated/graphql.ts";
import { connectGql, operation, type GqlSocket } from "./lib/gqlws.ts";
import { connectInspector, inspectPort } from "./lib/inspector.ts";
import { Holders } from "./lib/holders.ts";
import { openFileLimit, rssBytes, serverProcesses } from "./lib/proc.ts";
import { startRawRelay } from "./lib/raw-relay.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { seedDevices } from "./lib/seed.ts";
import { summarise } from "./lib/stats.ts";
import { startTarget } from "./lib/target.ts";

const limit = openFileLimit();
// Every socket is a file on both ends, and one process may open `limit` of them. The bench's own process holds up to
// MAIN_HOLD (the ones the delivery probes use); holder processes take the rest, HOLDER_SIZE each. On the server side
// BENCH_WORKERS > 1 spreads the sockets over the node's worker processes, so one node can hold more than one process.
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const perProcess = limit - 1000;
const MAIN_HOLD = Math.min(perProcess, 15_000);
const HOLDER_SIZE = MAIN_HOLD;
const ceiling = Math.min(100_000, perProcess * WORKERS);
const STEPS = (process.env.BENCH_STEPS ?? "1000,5000,10000,20000,50000,100000")
  .split(",")
  .map(Number)
  .filter((n) => n <= ceiling);
if (!process.env.BENCH_STEPS && STEPS[STEPS.length - 1] !== ceiling && ceiling < 100_000) STEPS.push(ceiling);
const CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 100);
const PROBES = Number(process.env.BENCH_PROBES ?? 200);
const SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
const KiB = 1024;
const settle = () => new Promise((r) => setTimeout(r, 3000));

async function connectAll(n: number, from: number, open: (i: number) => Promise<void>): Promise<{ perSecond: number; failed: number }> {
  let next = from;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        await open(i).catch(() => failed++);
      }
    }),
  );
  return { perSecond: Math.round(((n - from) / (performance.now() - start)) * 1000), failed };
}

console.log(`machine: ${JSON.stringify(machine())}; open-file limit ${limit}: steps ${STEPS.join(", ")}`);
const total = STEPS[STEPS.length - 1];
const rows: Record<string, unknown>[] = [];
const results: unknown[] = [];

// Baseline first (its sockets are closed before the real server's are opened).
const relay = await startRawRelay();
const bare: WebSocket[] = [];
const bareRss0 = rssBytes(relay.pid);
const bareSteps: { n: number; perSecond: number; kibPerConnection: number }[] = [];
for (const n of STEPS.filter((s) => s <= MAIN_HOLD)) {
  const c = await connectAll(n, bare.length, (i) => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(relay.url, { localAddress: SOURCES[i % SOURCES.length], perMessageDeflate: false });
    ws.once("error", reject);
    ws.once("open", () => {
      ws.send(JSON.stringify({ hello: `c${i}` }));
      ws.once("message", () => (bare.push(ws), resolve()));
    });
  }));
  await settle();
  bareSteps.push({ n, perSecond: c.perSecond, kibPerConnection: Math.round(((rssBytes(relay.pid) - bareRss0) / n / KiB) * 10) / 10 });
}
for (const ws of bare) ws.terminate();
relay.stop();

const port = inspectPort();
const target = await startTarget(
  {
    RATE_LIMITS: "off",
    PREKEY_LOW_WATER_MARK: "0",
    WS_AUTH_TIMEOUT_MS: "60000",
    NODE_OPTIONS: "--max-old-space-size=8192",
    // Every worker has its own pool: together they stay under PostgreSQL's default 100 connections.
    DATABASE_POOL_SIZE: String(Math.min(20, Math.floor(80 / WORKERS))),
  },
  WORKERS === 1 ? [`--inspect=127.0.0.1:${port}`] : [],
);
// Memory is read twice per step: as found, and after a full GC forced through the inspector (one server process
// only). The first includes the young generation the connect burst grew and connect-time garbage no major GC has
// taken yet, both divided by the connections; the second is what the held connections keep.
const inspector = WORKERS === 1 ? await connectInspector(port) : null;
const holders = new Holders();
try {
  const pid = target.node.child.pid!;
  // The node's memory: the server process, or the primary and its workers.
  const serverRss = () => serverProcesses(pid).reduce((sum, p) => sum + rssBytes(p), 0);
  const devices = await seedDevices(target.node.url, target.db.url!, total + 1);
  const sender = await connectGql(target.node.url, devices[total].token);
  const sockets: GqlSocket[] = [];
  const sent = new Map<number, number>();
  const latencies: number[] = [];
  const inbox = operation(InboxDocument);
  const onEvent = (p: { data?: unknown }) => {
    const idx = envelopeNumber(p);
    if (idx === undefined) return;
    const t = sent.get(idx);
    if (t === undefined) return;
    sent.delete(idx);
    latencies.push(performance.now() - t);
  };
  await settle();
  await inspector?.collectGarbage();
  const rss0 = serverRss();
  let probeIdx = 0;
  let assigned = 0; // devices handed to holder processes (from MAIN_HOLD on)
  let holderHeld = 0;
  for (const [k, n] of STEPS.entries()) {
    const before = sockets.length + assigned;
    const t0 = performance.now();
    const parts: Promise<number>[] = [];
    if (sockets.length < Math.min(n, MAIN_HOLD)) {
      parts.push(
        connectAll(Math.min(n, MAIN_HOLD), sockets.length, async (i) => {
          const s = await connectGql(target.node.url, devices[i].token, { localAddress: SOURCES[i % SOURCES.length], timeoutMs: 120_000 });
          s.subscribe(inbox, onEvent);
          sockets.push(s);
        }).then((c) => c.failed),
      );
    }
    for (let from = MAIN_HOLD + assigned; from < n; from += HOLDER_SIZE) {
      const tokens = devices.slice(from, Math.min(n, from + HOLDER_SIZE)).map((d) => d.token);
      assigned += tokens.length;
      parts.push(
        holders.hold({ url: target.node.url, tokens, sources: SOURCES, concurrency: 50 }).then((r) => {
          holderHeld += r.connected;
          return r.failed;
        }),
      );
    }
    const failed = (await Promise.all(parts)).reduce((a, b) => a + b, 0);
    const c = { perSecond: Math.round(((sockets.length + assigned - before) / (performance.now() - t0)) * 1000), failed };
    const held = sockets.length + holderHeld;
    await settle();
    const rss = serverRss();
    await inspector?.collectGarbage();
    const rssGc = inspector ? serverRss() : NaN;
    // Delivery to random held devices, one probe at a time every 10 ms.
    latencies.length = 0;
    sent.clear();
    for (let p = 0; p < PROBES; p++) {
      const to = devices[Math.floor(Math.random() * sockets.length)];
      const idx = probeIdx++;
      const body = numberedBody(idx, 200);
      sent.set(idx, performance.now());
      void sender
        .request(operation(SendMessageDocument), {
          input: {
            recipientUserId: to.userId,
            clientMessageId: randomUUID(),
            messageType: "TEXT",
            envelopes: [{ deviceId: 1, registrationId: to.registrationId, type: 1, body: body.toString("base64") }],
          },
        })
        .catch(() => sent.delete(idx));
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let w = 0; w < 100 && sent.size > 0; w++) await new Promise((r) => setTimeout(r, 100));
    const d = summarise(latencies);
    const kib = Math.round(((rss - rss0) / held / KiB) * 10) / 10;
    const kibGc = inspector ? Math.round(((rssGc - rss0) / held / KiB) * 10) / 10 : "n/a";
    const b = bareSteps[k] ?? { n, perSecond: NaN, kibPerConnection: NaN };
    rows.push({
      connections: held,
      "connect/s": c.perSecond,
      failed: c.failed,
      "server RSS MiB": Math.round(rss / 2 ** 20),
      "KiB/conn": kib,
      "KiB/conn after GC": kibGc,
      "deliver p50 ms": d.p50,
      p95: d.p95,
      p99: d.p99,
      "not delivered": sent.size,
      "bare ws KiB/conn": b.kibPerConnection,
      "bare connect/s": b.perSecond,
      "KiB ratio": Math.round((kib / b.kibPerConnection) * 10) / 10,
    });
    results.push({ connections: held, workers: WORKERS, holders: holders.pids.length, connect: c, rssBytes: rss, rssAfterGcBytes: rssGc, rssBaseBytes: rss0, kibPerConnection: kib, kibPerConnectionAfterGc: kibGc, delivery: d, undelivered: sent.size, bare: b });
    if (c.failed > n * 0.05) break;
  }
  printTable(`bench:connections — graphql-ws inbox subscriptions held on one node of ${WORKERS} server process(es) (open-file limit ${limit} per process)`, rows);
  record("connections", { ...target.mode, openFileLimit: limit, sources: SOURCES.length, concurrency: CONCURRENCY }, results);
  for (const s of sockets) s.ws.terminate();
  sender.close();
} finally {
  holders.stop();
  inspector?.close();
  await target.stop();
}
