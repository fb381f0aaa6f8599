// Memory probe for bench:connections: a real server on PostgreSQL + Redis, heap snapshots (SIGUSR2) before and after
// N authenticated sockets each holding an `inbox` subscription, and the server's RSS and smaps at both points.
// Env: HEAP_N (connections, 5000), HEAP_DIR (where the server writes its snapshots, /tmp/heap).
// Analyse with `npx tsx bench/heap-diff.ts <before> <after> <N>`.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { InboxDocument } from "../src/client/generated/graphql.ts";
import { createTestDatabase } from "../test/helpers/database.ts";
import { baseEnv, busPrefix, spawnNode } from "../test/helpers/server.ts";
import { connectGql, operation, type GqlSocket } from "./lib/gqlws.ts";
import { connectInspector, inspectPort } from "./lib/inspector.ts";
import { seedDevices } from "./lib/seed.ts";

const N = Number(process.env.HEAP_N ?? 5000);
const DIR = process.env.HEAP_DIR ?? "/tmp/heap";
const INSPECT_PORT = inspectPort();
const SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
// Long enough for connects under load. The "after" figures wait it out: until then a connection also holds what
// the auth deadline costs (graphql-ws's own timer in the code before Round 5, a map entry now), which a connection
// past its connection_init does not keep.
const AUTH_TIMEOUT_MS = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
mkdirSync(DIR, { recursive: true });

process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
process.env.REDIS_URL ??= "redis://127.0.0.1:6379";
const db = await createTestDatabase();
const node = await spawnNode(
  baseEnv(db, {
    BUS_PREFIX: busPrefix(),
    LOG_LEVEL: "warn",
    DATABASE_POOL_SIZE: "20",
    RATE_LIMITS: "off",
    PREKEY_LOW_WATER_MARK: "0",
    WS_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS),
    ...(process.env.PRESENCE_TTL_MS ? { PRESENCE_TTL_MS: process.env.PRESENCE_TTL_MS } : {}),
  }),
  ["--max-old-space-size=8192", "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${DIR}`, `--inspect=127.0.0.1:${INSPECT_PORT}`],
);
const pid = node.child.pid!;

// The inspector gives the server's own view (heap used/total, external, array buffers) and a forced full GC.
const inspector = await connectInspector(INSPECT_PORT);
const call = inspector.call;
type Usage = { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
async function usage(gc: boolean): Promise<Usage> {
  if (gc) await call("HeapProfiler.collectGarbage");
  const r = await call("Runtime.evaluate", { expression: "process.memoryUsage()", returnByValue: true });
  return r.result!.result!.value as Usage;
}
// V8's spaces (committed and used, MiB): which space grew, and whether it holds data or free room.
async function spaces(label: string) {
  const r = await call("Runtime.evaluate", {
    expression:
      "JSON.stringify(process.getBuiltinModule('v8').getHeapSpaceStatistics().map((s) => [s.space_name, +(s.space_size / 2 ** 20).toFixed(1), +(s.space_used_size / 2 ** 20).toFixed(1)]))",
    returnByValue: true,
  });
  console.log(`spaces ${label} [name, committed MiB, used MiB]: ${r.result!.result!.value}`);
}
const kib = (a: Usage, b: Usage) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, Math.round(((b[k as keyof Usage] - a[k as keyof Usage]) / N / 1024) * 10) / 10]));

interface SampleNode {
  head?: SampleNode;
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}
function printSamples(profile: SampleNode) {
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const where = (url: string) =>
    url.includes("node_modules/") ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, "$1") : url.replace(/^.*\/(src|bench)\//, "$1/") || "(native)";
  // Attributed to the innermost frame outside node internals, so Buffer/Promise work lands on whoever asked for it.
  const walk = (n: SampleNode, owner: string, fn: string) => {
    const url = n.callFrame.url;
    const own = url && !url.startsWith("node:") ? where(url) : owner;
    const f = url && !url.startsWith("node:") ? `${own} ${n.callFrame.functionName || "(anon)"}:${n.callFrame.lineNumber + 1}` : fn;
    if (n.selfSize) {
      total += n.selfSize;
      byPackage.set(own, (byPackage.get(own) ?? 0) + n.selfSize);
      byFunction.set(f, (byFunction.get(f) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, own, f);
  };
  walk((profile as { head: SampleNode }).head, "(root)", "(root)");
  const show = (m: Map<string, number>, k: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, b]) => `${(b / N / 1024).toFixed(1).padStart(7)}  ${name}`).join("\n");
  console.log(`allocated while connecting: ${(total / N / 1024).toFixed(1)} KiB per connection\nby package:\n${show(byPackage, 15)}\nby function:\n${show(byFunction, 25)}`);
}

function memory(label: string) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const pick = (s: string, k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  const m = { rssKiB: pick(status, "VmRSS"), anonKiB: pick(status, "RssAnon"), fileKiB: pick(status, "RssFile"), privDirtyKiB: pick(rollup, "Private_Dirty") };
  console.log(label, JSON.stringify(m));
  return m;
}

async function snapshot(label: string): Promise<string> {
  const before = new Set(readdirSync(DIR));
  process.kill(pid, "SIGUSR2");
  for (;;) {
    await sleep(1000);
    const fresh = readdirSync(DIR).filter((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    if (fresh.length) {
      // Written when the size stops changing.
      let size = -1;
      for (;;) {
        await sleep(2000);
        const s = readFileSync(`${DIR}/${fresh[0]}`).length;
        if (s === size) break;
        size = s;
      }
      console.log(`${label}: ${DIR}/${fresh[0]}`);
      return `${DIR}/${fresh[0]}`;
    }
  }
}

try {
  const devices = await seedDevices(node.url, db.url!, N + 50);
  const inbox = operation(InboxDocument);
  const sockets: GqlSocket[] = [];
  const open = async (i: number) => {
    const s = await connectGql(node.url, devices[i].token, { localAddress: SOURCES[i % SOURCES.length], timeoutMs: 120_000 });
    s.subscribe(inbox, () => {});
    sockets.push(s);
  };
  // Warm up the code paths (lazy compilation, caches) with 50 connections that stay open in both snapshots.
  for (let i = N; i < N + 50; i++) await open(i);
  await sleep(3000);
  const u0 = await usage(true);
  await spaces("before");
  const m0 = memory("before");
  const s0 = process.env.HEAP_SNAPSHOTS === "0" ? "" : await snapshot("before");
  const m0b = memory("before, after snapshot");
  // HEAP_SAMPLING=1: every allocation made while connecting (sampled, including what GC already freed), by package
  // and function, in KiB per connection: what connecting churns through, not what it keeps.
  // HEAP_SAMPLING=2: only what is still in the heap 16 s after connecting (live, or garbage no major GC has taken
  // yet), then again after a full GC; the difference is the garbage connecting left in the old generation.
  const sampling = process.env.HEAP_SAMPLING === "1";
  const leftovers = process.env.HEAP_SAMPLING === "2";
  if (sampling || leftovers)
    await call("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: sampling,
      includeObjectsCollectedByMinorGC: sampling,
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < N) await open(next++);
    }),
  );
  if (sampling) printSamples(((await call("HeapProfiler.stopSampling")) as { result: { profile: SampleNode } }).result.profile);
  await sleep(AUTH_TIMEOUT_MS + 1000);
  if (leftovers) {
    const found = ((await call("HeapProfiler.getSamplingProfile")) as { result: { profile: SampleNode } }).result.profile;
    await call("HeapProfiler.collectGarbage");
    const live = ((await call("HeapProfiler.stopSampling")) as { result: { profile: SampleNode } }).result.profile;
    console.log("--- in the heap 16 s after connecting (no forced GC):");
    printSamples(found);
    console.log("--- after a full GC:");
    printSamples(live);
  }
  const m1 = memory("after");
  const u1 = await usage(false);
  await spaces("after, as found");
  const u1gc = await usage(true);
  await spaces("after, GC");
  console.log("KiB per connection, as found:", JSON.stringify(kib(u0, u1)));
  console.log("KiB per connection, after a full GC:", JSON.stringify(kib(u0, u1gc)));
  const s1 = process.env.HEAP_SNAPSHOTS === "0" ? "" : await snapshot("after");
  console.log(`per connection: RSS ${((m1.rssKiB - m0b.rssKiB) / N).toFixed(1)} KiB, anon ${((m1.anonKiB - m0b.anonKiB) / N).toFixed(1)} KiB (first RSS ${(m0.rssKiB / 1024).toFixed(0)} MiB)`);
  console.log(`npx tsx bench/heap-diff.ts ${s0} ${s1} ${N}`);
  for (const s of sockets) s.ws.terminate();
} finally {
  inspector.close();
  await node.stop();
  await db.drop();
}
