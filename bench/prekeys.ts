// bench:prekeys — pre-key bundle claims per second and their latency, many devices, over graphql-ws from this
// (separate) load process against a real server on PostgreSQL + Redis. Baseline: the same SKIP LOCKED claim
// statements sent straight to PostgreSQL with `pg`, at the same rates.
import { monitorEventLoopDelay } from "node:perf_hooks";
import pg from "pg";
import { ClaimPreKeyBundlesDocument } from "../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../src/client/transport.ts";
import { registerDevice } from "../test/helpers/accounts.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { registerMany } from "./lib/devices.ts";
import { openLoop, summarise } from "./lib/stats.ts";
import { startTarget } from "./lib/target.ts";

const KEYS = 100;
const CLAIMERS = Number(process.env.BENCH_CLAIMERS ?? 20);
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 8000);
const RATES = (process.env.BENCH_RATES ?? "250,500,1000,1500").split(",").map(Number);
// Enough devices that every claim of every step takes a one-time key, as a real claim does: with 100 devices the
// keys ran out halfway through the 1,000/s step, and the claims after that deleted nothing and were cheaper.
const CLAIMS = RATES.reduce((sum, rate) => sum + (rate * STEP_MS) / 1000, 0);
const TARGETS = Number(process.env.BENCH_TARGETS ?? Math.ceil((CLAIMS * 1.05) / KEYS));

const target = await startTarget();
try {
  console.log(`machine: ${JSON.stringify(machine())}`);
  console.log(`registering ${TARGETS} devices with ${KEYS} one-time EC + ${KEYS} Kyber keys each…`);
  if (TARGETS * KEYS < CLAIMS) console.log(`note: ${TARGETS * KEYS} one-time keys for ${CLAIMS} claims; the last claims get none`);
  const devices = await registerMany(target.node.url, TARGETS, KEYS);
  const claimers = await Promise.all(Array.from({ length: CLAIMERS }, () => registerDevice(target.node.url, { oneTimeKeys: 0 })));
  const sockets = claimers.map((c) => openWs(target.node.url, c.token, { lazy: false }));
  let pick = 0;
  const rows: Record<string, unknown>[] = [];
  const results: unknown[] = [];

  const sql = new pg.Pool({ connectionString: target.db.url!, max: 20 });
  for (const rate of RATES) {
    const latencies: number[] = [];
    let errors = 0;
    let withOneTimeKey = 0;
    // This process's own event-loop delay during the step: a late loop here delays sends and stretches latencies
    // that the server is not to blame for. The histogram counts the 5 ms sampling interval in; lateness is the rest.
    const loop = monitorEventLoopDelay({ resolution: 5 });
    const late = (ns: number) => Math.max(0, Math.round((ns / 1e6 - 5) * 10) / 10);
    loop.enable();
    const run = await openLoop(rate, STEP_MS, 2000, async () => {
      const i = pick++;
      const socket = sockets[i % sockets.length];
      const t = devices[i % devices.length];
      const t0 = performance.now();
      try {
        const r = await wsRequest(socket, ClaimPreKeyBundlesDocument, { userId: t.userId, deviceId: 1 });
        latencies.push(performance.now() - t0);
        if (r.claimPreKeyBundles[0]?.preKeyId != null) withOneTimeKey++;
      } catch {
        errors++;
      }
    });
    loop.disable();
    const s = summarise(latencies);

    // Baseline: the EC claim statement alone, on the database, at the same rate.
    const base: number[] = [];
    await openLoop(rate, Math.min(STEP_MS, 4000), 2000, async () => {
      const t = devices[pick++ % devices.length];
      const t0 = performance.now();
      await sql.query(
        `SELECT key_id FROM one_time_pre_keys WHERE user_id = $1 AND device_id = 1 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [t.userId],
      );
      base.push(performance.now() - t0);
    });
    const b = summarise(base);
    const achieved = Math.round((latencies.length / run.elapsedMs) * 1000);
    rows.push({
      "offered/s": rate,
      "claims/s": achieved,
      "p50 ms": s.p50,
      "p95 ms": s.p95,
      "p99 ms": s.p99,
      errors: errors + run.skipped,
      "with one-time key": withOneTimeKey,
      "pg baseline p99 ms": b.p99,
      "p99 / baseline": Math.round((s.p99 / b.p99) * 10) / 10,
      "load-gen loop late p99 ms": late(loop.percentile(99)),
    });
    const loadGenLoopLate = { p99: late(loop.percentile(99)), max: late(loop.max) };
    results.push({ rate, achieved, latency: s, errors, skipped: run.skipped, baseline: b, loadGenLoopLate });
  }
  printTable("bench:prekeys — claimPreKeyBundles over graphql-ws (one device per claim)", rows);
  record("prekeys", { ...target.mode, targets: TARGETS, claimers: CLAIMERS, stepMs: STEP_MS }, results);
  await sql.end();
  await Promise.all(sockets.map((s) => s.dispose()));
} finally {
  await target.stop();
}
