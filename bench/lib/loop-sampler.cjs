// Loaded into a bench server by BENCH_LOOP_SAMPLE=1 (bench/lib/target.ts, and bench:send's bare server): every
// 500 ms it appends one JSON line to the file BENCH_LOOP_SAMPLE_FILE with the event loop's delay (p50, p99, max, ms)
// and the collector's pauses in that window (count, total and longest ms, by kind), so that bench:send can tell
// per step how long a callback waited for the loop and how much of that was garbage collection.
const { isMainThread } = require("node:worker_threads");
const { monitorEventLoopDelay, PerformanceObserver, constants } = require("node:perf_hooks");
const { appendFileSync } = require("node:fs");

// Node 20 also runs --require modules in the thread of tsx's module hooks: sample the server's main thread only.
if (isMainThread) {
  const file = process.env.BENCH_LOOP_SAMPLE_FILE;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let pauses = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ ms: e.duration, minor: e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR });
  }).observe({ entryTypes: ["gc"] });
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  setInterval(() => {
    const line = {
      t: Date.now(),
      lagP50: ms(delay.percentile(50)),
      lagP99: ms(delay.percentile(99)),
      lagMax: ms(delay.max),
      scavenges: pauses.filter((p) => p.minor).length,
      otherGcs: pauses.filter((p) => !p.minor).length,
      gcMs: Math.round(pauses.reduce((sum, p) => sum + p.ms, 0) * 10) / 10,
      gcMaxMs: Math.round(Math.max(0, ...pauses.map((p) => p.ms)) * 10) / 10,
    };
    appendFileSync(file, JSON.stringify(line) + "\n");
    delay.reset();
    pauses = [];
  }, 500).unref();
}
