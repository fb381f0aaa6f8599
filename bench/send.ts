// bench:send — 1:1 sends at offered rate steps over graphql-ws, each envelope persisted in the recipient's queue
// and delivered on its live `inbox` subscription. Latency is from the sendMessage call to the envelope's arrival on
// the recipient's socket. Baselines in the same run: the same bytes through a bare `ws` relay between the same
// number of sockets, and the same rows inserted straight into PostgreSQL with batched INSERTs.
// Rate limits are switched off in the target (RATE_LIMITS=off): they would cap one sender at 60 sends/s.
import { envelopeNumber, numberedBody } from "./lib/numbered-body.ts";
import { randomUUID } from "node:crypto";
import { InboxDocument, SendMessageDocument } from "../src/client/generated/graphql.ts";
import { queryText } from "../src/client/transport.ts";
import { CpuMeter } from "./lib/cpu-meter.ts";
import { connectGql, type GqlSocket } from "./lib/gqlws.ts";
import { rawBatchedInserts } from "./lib/raw-inserts.ts";
import { rawRelayRun, startRawRelay } from "./lib/raw-relay.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { seedDevices } from "./lib/seed.ts";
import { openLoop, summarise } from "./lib/stats.ts";
import { startTarget } from "./lib/target.ts";

const PAIRS = Number(process.env.BENCH_PAIRS ?? 50);
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 6000);
const RATES = (process.env.BENCH_RATES ?? "1000,2000,5000,10000,15000").split(",").map(Number);
const BODY_BYTES = 200;
const MAX_IN_FLIGHT = PAIRS * 60; // well under the server's 100 operations per connection

const target = await startTarget({ RATE_LIMITS: "off", PREKEY_LOW_WATER_MARK: "0" });
try {
  console.log(`machine: ${JSON.stringify(machine())}`);
  const devices = await seedDevices(target.node.url, target.db.url!, PAIRS * 2);
  const senders: GqlSocket[] = [];
  const receivers: GqlSocket[] = [];
  const sent = new Map<number, number>(); // envelope index -> send time
  const arrivals: number[] = []; // latencies of the current step
  let lastArrival = 0;
  let delivered = 0;
  for (let i = 0; i < PAIRS; i++) {
    senders.push(await connectGql(target.node.url, devices[i].token));
    const r = await connectGql(target.node.url, devices[PAIRS + i].token);
    r.subscribe(queryText(InboxDocument), (p) => {
      const idx = envelopeNumber(p);
      if (idx === undefined) return;
      const t = sent.get(idx);
      if (t === undefined) return;
      sent.delete(idx);
      lastArrival = performance.now();
      arrivals.push(lastArrival - t);
      delivered++;
    });
    receivers.push(r);
  }
  const sendQuery = queryText(SendMessageDocument);
  let nextIdx = 0;
  let pick = 0;
  const sendOne = async (errors: { n: number }, callLatencies: number[]) => {
    const i = pick++ % PAIRS;
    const idx = nextIdx++;
    const body = numberedBody(idx, BODY_BYTES);
    const to = devices[PAIRS + i];
    const t0 = performance.now();
    sent.set(idx, t0);
    try {
      await senders[i].request(sendQuery, {
        input: {
          recipientUserId: to.userId,
          clientMessageId: randomUUID(),
          messageType: "TEXT",
          envelopes: [{ deviceId: 1, registrationId: to.registrationId, type: 1, body: body.toString("base64") }],
        },
      });
      callLatencies.push(performance.now() - t0);
    } catch (err) {
      sent.delete(idx);
      if (errors.n++ === 0) console.log(`send error: ${(err as Error).message.slice(0, 300)}`);
    }
  };
  // Warm-up: every pair once, and every subscription proven live.
  await openLoop(200, 1000, 200, () => sendOne({ n: 0 }, []));
  for (let w = 0; w < 100 && sent.size > 0; w++) await new Promise((r) => setTimeout(r, 100));
  arrivals.length = 0;
  delivered = 0;

  const rows: Record<string, unknown>[] = [];
  const results: unknown[] = [];
  const meter = new CpuMeter(target.node.child.pid!, target.db.url!);
  for (const rate of RATES) {
    arrivals.length = 0;
    delivered = 0;
    const errors = { n: 0 };
    const calls: number[] = [];
    const cpuBefore = await meter.read();
    const start = performance.now();
    const run = await openLoop(rate, STEP_MS, MAX_IN_FLIGHT, () => sendOne(errors, calls));
    // Drain: what was accepted must arrive (bounded).
    for (let w = 0; w < 150 && sent.size > 0; w++) await new Promise((r) => setTimeout(r, 100));
    const cpu = CpuMeter.diff(cpuBefore, await meter.read());
    const perEnvelope = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, delivered));
    const lost = sent.size;
    sent.clear();
    const s = summarise(arrivals);
    const c = summarise(calls);
    const deliveredPerSecond = Math.round((delivered / (Math.max(lastArrival, start + 1) - start)) * 1000);
    rows.push({
      "offered/s": rate,
      "accepted/s": Math.round((calls.length / run.elapsedMs) * 1000),
      "delivered/s": deliveredPerSecond,
      "send→deliver p50": s.p50,
      p95: s.p95,
      p99: s.p99,
      "call p50": c.p50,
      "call p99": c.p99,
      "skipped (in-flight cap)": run.skipped,
      errors: errors.n,
      undelivered: lost,
      "server CPU µs/env": perEnvelope(cpu.server),
      "pg µs/env": perEnvelope(cpu.postgres),
      "load µs/env": perEnvelope(cpu.load),
    });
    results.push({ rate, delivered, deliveredPerSecond, accepted: calls.length, latency: s, call: c, skipped: run.skipped, errors: errors.n, undelivered: lost, cpuSeconds: cpu });
    if (run.skipped > rate * (STEP_MS / 1000) * 0.25) break; // saturated: higher steps say nothing new
  }
  for (const s of [...senders, ...receivers]) s.close();
  await meter.close();

  const relay = await startRawRelay();
  const raw = await rawRelayRun(relay.url, { pairs: PAIRS, inFlight: 16, payloadBytes: BODY_BYTES, durationMs: 5000 });
  relay.stop();
  const inserts = await rawBatchedInserts(target.db.url!, { rows: 100_000, batch: 100, connections: 4, payloadBytes: BODY_BYTES });

  printTable(`bench:send — ${PAIRS} sender/receiver pairs, ${BODY_BYTES}-byte envelopes, ${STEP_MS / 1000} s per step (latency ms)`, rows);
  const best = Math.max(...results.map((r) => (r as { deliveredPerSecond: number }).deliveredPerSecond));
  printTable("baselines (same run)", [
    { path: "raw ws relay, 16 in flight per pair", "msg/s": raw.perSecond, p50: raw.latency.p50, p99: raw.latency.p99, "ours / baseline": (best / raw.perSecond).toFixed(3) },
    { path: "raw pg INSERT, 100 rows per statement, 4 connections", "msg/s": inserts.rowsPerSecond, p50: "", p99: "", "ours / baseline": (best / inserts.rowsPerSecond).toFixed(3) },
  ]);
  record("send", { ...target.mode, pairs: PAIRS, stepMs: STEP_MS, bodyBytes: BODY_BYTES, rateLimits: "off" }, { steps: results, baseline: { rawRelay: raw, rawInserts: inserts } });
} finally {
  await target.stop();
}
