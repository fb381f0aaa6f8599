// bench:send — 1:1 messages over graphql-ws at offered rate steps, in two modes. "lifecycle" runs what the SDK
// runs for every message (bench/lib/lifecycle.ts): send, delivery on the recipient's inbox subscription, the
// recipient's batched acknowledgement, the DELIVERED receipt on the sender's subscription, the sender's
// acknowledgement of it. "send-only" sends and delivers and nobody acknowledges (the figure of earlier rounds).
// Baselines in the same run: the same bytes through a bare `ws` relay between the same number of sockets, the same
// rows inserted straight into PostgreSQL with batched INSERTs, the lifecycle's own SQL alone on a bare pg pool, and
// the same load's lifecycle steps against a bare server that speaks the same protocol and runs the same SQL with
// nothing else (bench/lib/bare-lifecycle-server.ts): what any server of this design could reach on this machine.
// Rate limits are switched off in the target (RATE_LIMITS=off): they would cap one sender at 60 sends/s.
import { numberedBody } from "./lib/numbered-body.ts";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AcceptMessageRequestDocument, SendMessageDocument } from "../src/client/generated/graphql.ts";
import { HttpTransport } from "../src/client/transport.ts";
import { startBaselineServer } from "./lib/baseline-server.ts";
import { CpuMeter } from "./lib/cpu-meter.ts";
import { loopSampler, type LoopSampler } from "./lib/loop-sample.ts";
import { connectGql, operation, type GqlSocket } from "./lib/gqlws.ts";
import { Lifecycle } from "./lib/lifecycle.ts";
import { rawBatchedInserts } from "./lib/raw-inserts.ts";
import { rawLifecycle } from "./lib/raw-lifecycle.ts";
import { rawRelayRun, startRawRelay } from "./lib/raw-relay.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { seedDevices } from "./lib/seed.ts";
import { openLoop, summarise } from "./lib/stats.ts";
import { startTarget } from "./lib/target.ts";

const PAIRS = Number(process.env.BENCH_PAIRS ?? 50);
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 6000);
const RATES = (process.env.BENCH_RATES ?? "1000,2500,5000,10000").split(",").map(Number);
const MODES = (process.env.BENCH_MODES ?? "lifecycle,send-only").split(",");
const BODY_BYTES = 200;
// BENCH_TIMELINE_MS: also print send→deliver per window of that many ms of send time, to tell a steady queue from
// pauses (a collection, a checkpoint, autovacuum) that make the p99.
const TIMELINE_MS = Number(process.env.BENCH_TIMELINE_MS ?? 0);
// BENCH_WARMUP_MS: the length of the warm-up step at the first rate (0: none).
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 4000);
// BENCH_BARE=0 skips the bare lifecycle server's steps (the floor of the server's share, run after ours).
const BARE = process.env.BENCH_BARE !== "0";
const MAX_IN_FLIGHT = PAIRS * 60; // well under the server's 100 operations per connection

function printTimeline(title: string, start: number, sentAt: number[], latency: number[]): void {
  const windows = new Map<number, number[]>();
  sentAt.forEach((t, i) => {
    const w = Math.floor((t - start) / TIMELINE_MS);
    const list = windows.get(w) ?? [];
    list.push(latency[i]);
    windows.set(w, list);
  });
  const rows = [...windows.entries()].sort((a, b) => a[0] - b[0]).map(([w, list]) => {
    const s = summarise(list);
    return { "sent at ms": w * TIMELINE_MS, messages: list.length, p50: s.p50, p99: s.p99, max: s.max };
  });
  printTable(`send→deliver by send time, ${title}`, rows);
}

const target = await startTarget({ RATE_LIMITS: "off", PREKEY_LOW_WATER_MARK: "0" });
try {
  console.log(`machine: ${JSON.stringify(machine())}; load average at start ${(await import("node:os")).loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  const devices = await seedDevices(target.node.url, target.db.url!, PAIRS * 2);
  // Delivered receipts go only to senders the recipient accepted (a first message is a request): as a real pair of
  // contacts, each recipient has accepted its sender.
  await Promise.all(
    Array.from({ length: PAIRS }, (_, i) =>
      new HttpTransport(target.node.url, devices[PAIRS + i].token).request(AcceptMessageRequestDocument, { userId: devices[i].userId }),
    ),
  );
  // The same load against our server and then against the bare lifecycle server (the lifecycle with nothing of ours
  // but its SQL, bench/lib/bare-lifecycle-server.ts) on the same database: the floor of the server's share.
  const rows: Record<string, unknown>[] = [];
  const results: unknown[] = [];
  const measure = async (server: string, url: string, pid: number, modes: string[], loop: LoopSampler | null) => {
    const senders: GqlSocket[] = [];
    const receivers: GqlSocket[] = [];
    for (let i = 0; i < PAIRS; i++) {
      senders.push(await connectGql(url, devices[i].token));
      receivers.push(await connectGql(url, devices[PAIRS + i].token));
    }
    const life = new Lifecycle(senders, receivers);
    const sendQuery = operation(SendMessageDocument);
    let pick = 0;
    const sendOne = async (errors: { n: number }, callLatencies: number[]) => {
      const i = pick++ % PAIRS;
      const idx = nextIdx++;
      const to = devices[PAIRS + i];
      const t0 = performance.now();
      life.sent.set(idx, t0);
      try {
        await senders[i].request(sendQuery, {
          input: {
            recipientUserId: to.userId,
            clientMessageId: randomUUID(),
            messageType: "TEXT",
            envelopes: [{ deviceId: 1, registrationId: to.registrationId, type: 1, body: numberedBody(idx, BODY_BYTES).toString("base64") }],
          },
        });
        callLatencies.push(performance.now() - t0);
      } catch (err) {
        life.sent.delete(idx);
        if (errors.n++ === 0) console.log(`send error: ${(err as Error).message.slice(0, 300)}`);
      }
    };
    const drain = async () => {
      for (let w = 0; w < 200 && !life.settled; w++) await new Promise((r) => setTimeout(r, 100));
      return life.abandon();
    };
    // Warm-up: every pair once through the whole lifecycle, every subscription proven live.
    await openLoop(200, 1000, 200, () => sendOne({ n: 0 }, []));
    await drain();

    const meter = new CpuMeter(pid, target.db.url!);
    for (const mode of modes) {
      life.acking = mode === "lifecycle";
      // A first step at the first rate, reported as "(warm-up)": a server's first seconds at a rate (code still
      // being optimised, pools and batches growing) are its cold figures, not its steady ones.
      const steps = [...(WARMUP_MS > 0 ? [{ rate: RATES[0], ms: WARMUP_MS, warmUp: true }] : []), ...RATES.map((rate) => ({ rate, ms: STEP_MS, warmUp: false }))];
      for (const { rate, ms, warmUp } of steps) {
        life.reset();
        const errors = { n: 0 };
        const calls: number[] = [];
        const cpuBefore = await meter.read();
        const wallStart = Date.now();
        const start = performance.now();
        const run = await openLoop(rate, ms, MAX_IN_FLIGHT, () => sendOne(errors, calls));
        const lost = await drain();
        const cpu = CpuMeter.diff(cpuBefore, await meter.read());
        const done = life.acking ? life.completed : life.delivered;
        const end = life.acking ? life.lastCompletion : life.lastDelivery;
        const perMessage = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, done));
        const perSecond = Math.round((done / (Math.max(end, start + 1) - start)) * 1000);
        const d = summarise(life.deliver);
        if (TIMELINE_MS > 0) printTimeline(`${server}, ${mode} at ${rate}/s`, start, life.deliverSentAt, life.deliver);
        const r = summarise(life.receipt);
        const c = summarise(calls);
        const label = warmUp ? `${mode} (warm-up)` : mode;
        rows.push({
          server,
          mode: label,
          "offered/s": rate,
          "accepted/s": Math.round((calls.length / run.elapsedMs) * 1000),
          "done/s": perSecond,
          "send→deliver p50": d.p50,
          p99: d.p99,
          "deliver→receipt p50": life.acking ? r.p50 : "",
          "p99 ": life.acking ? r.p99 : "",
          "call p99": c.p99,
          "msgs acked per call": life.acking ? (life.total.length * 2 / Math.max(1, life.ackCalls)).toFixed(1) : "",
          skipped: run.skipped,
          errors: errors.n + life.ackFailures,
          "lost (no delivery/receipt)": `${lost.undelivered}/${lost.noReceipt}`,
          "server µs/msg": perMessage(cpu.server),
          "pg µs/msg": perMessage(cpu.postgres),
          "load µs/msg": perMessage(cpu.load),
          ...loop?.between(wallStart, Date.now()),
        });
        results.push({ server, mode: label, rate, done, perSecond, accepted: calls.length, deliver: d, receipt: r, total: summarise(life.total), call: c, ackCalls: life.ackCalls, skipped: run.skipped, errors: errors.n, ackFailures: life.ackFailures, lost, cpuSeconds: cpu });
        if (!warmUp && run.skipped > rate * (ms / 1000) * 0.25) break; // saturated: higher steps say nothing new
      }
    }
    for (const s of [...senders, ...receivers]) s.close();
    await meter.close();
  };
  let nextIdx = 0;
  await measure("ours", target.node.url, target.node.child.pid!, MODES, target.loop);
  if (BARE && MODES.includes("lifecycle")) {
    const dir = mkdtempSync(join(tmpdir(), "bare-"));
    writeFileSync(join(dir, "devices.json"), JSON.stringify(Object.fromEntries(devices.map((d) => [d.token, d.userId]))));
    // BENCH_PROFILE=1 profiles the bare server as well (its .cpuprofile beside the server's).
    const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${fileURLToPath(new URL("./results/profiles", import.meta.url))}`] : [];
    const loop = loopSampler("bare");
    const env = { DATABASE_URL: target.db.url!, REDIS_URL: process.env.REDIS_URL!, BARE_DEVICES: join(dir, "devices.json"), ...loop?.env };
    const bare = await startBaselineServer(new URL("./lib/bare-lifecycle-server.ts", import.meta.url), env, [...profile, ...(loop?.nodeArgs ?? [])]);
    try {
      await measure("bare", `http://127.0.0.1:${bare.port}/graphql`, bare.pid, ["lifecycle"], loop);
    } finally {
      bare.stop();
      loop?.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const relay = await startRawRelay();
  const raw = await rawRelayRun(relay.url, { pairs: PAIRS, inFlight: 16, payloadBytes: BODY_BYTES, durationMs: 5000 });
  relay.stop();
  const inserts = await rawBatchedInserts(target.db.url!, { rows: 100_000, batch: 100, connections: 4, payloadBytes: BODY_BYTES });
  const pairs = Array.from({ length: PAIRS }, (_, i) => ({ sender: devices[i].userId, recipient: devices[PAIRS + i].userId }));
  const floor = await rawLifecycle(target.db.url!, { pairs, messages: 50_000, batch: 100, connections: 4, payloadBytes: BODY_BYTES });

  printTable(`bench:send — ${PAIRS} sender/receiver pairs, ${BODY_BYTES}-byte envelopes, ${STEP_MS / 1000} s per step (latency ms; "done" = lifecycle completed, or delivered when send-only)`, rows);
  const best = (mode: string) =>
    Math.max(0, ...results.filter((x) => (x as { mode: string; server: string }).mode === mode && (x as { server: string }).server === "ours").map((x) => (x as { perSecond: number }).perSecond));
  const ratio = (base: number) => MODES.map((m) => `${m} ${(best(m) / base).toFixed(3)}`).join(", ");
  printTable("baselines (same run)", [
    { path: "raw ws relay, 16 in flight per pair", "msg/s": raw.perSecond, p50: raw.latency.p50, p99: raw.latency.p99, "ours / baseline": ratio(raw.perSecond) },
    { path: "raw pg INSERT, 100 rows per statement, 4 connections", "msg/s": inserts.rowsPerSecond, p50: "", p99: "", "ours / baseline": ratio(inserts.rowsPerSecond) },
    { path: "lifecycle SQL alone (send, ack, receipt ack), 100 messages per statement, 4 connections", "msg/s": floor.messagesPerSecond, p50: "", p99: "", "ours / baseline": ratio(floor.messagesPerSecond) },
  ]);
  record("send", { ...target.mode, pairs: PAIRS, stepMs: STEP_MS, bodyBytes: BODY_BYTES, rateLimits: "off" }, { steps: results, baseline: { rawRelay: raw, rawInserts: inserts, lifecycleSql: floor } });
} finally {
  await target.stop();
}
