// Loaded into the bench server by BENCH_ALLOC_PROFILE=<start ms>[,<duration ms>] (bench/lib/target.ts): from that
// long after the server starts, samples every allocation for the duration (4 s by default), the ones the GC already
// took included, and writes a .heapprofile into bench/results/profiles. A --heap-prof profile keeps only what is
// still alive at exit, which says nothing about what keeps the collector busy under load.
// Summarise it with `npx tsx bench/profile-summary.ts <file>.heapprofile`. BENCH_ALLOC_SURVIVORS=1 leaves out what
// died young: what is left survived a young collection (copied, and promoted for a major collection to take).
const inspector = require("node:inspector");
const { writeFileSync, mkdirSync } = require("node:fs");
const { join } = require("node:path");

// Node 20 also runs --require modules in the thread of tsx's module hooks: sample the server's main thread only.
const { isMainThread } = require("node:worker_threads");
const [startMs, durationMs = 4000] = String(process.env.BENCH_ALLOC_PROFILE).split(",").map(Number);
const dir = process.env.BENCH_ALLOC_PROFILE_DIR;
const flags = { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !process.env.BENCH_ALLOC_SURVIVORS };
const session = new inspector.Session();
if (isMainThread) session.connect();
if (isMainThread) setTimeout(() => {
  session.post("HeapProfiler.startSampling", flags, () => {
    setTimeout(() => {
      session.post("HeapProfiler.stopSampling", (err, result) => {
        if (err) return;
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `Alloc.${Date.now()}.${process.pid}.heapprofile`), JSON.stringify(result.profile));
      });
    }, durationMs).unref();
  });
}, startMs).unref();
