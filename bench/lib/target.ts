// The system under test: a real server process on a fresh PostgreSQL database with Redis, as CI runs it.
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "../../test/helpers/database.ts";
import { loopSampler, type LoopSampler } from "./loop-sample.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../../test/helpers/server.ts";

export interface Target {
  node: NodeProcess;
  loop: LoopSampler | null;
  db: TestDatabase;
  mode: { database: string; bus: string; nodes: number; workers: number };
  stop(): Promise<void>;
}

/** `nodeArgs` go to the server's node (e.g. --inspect), after the profiling flags. */
export async function startTarget(extraEnv: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Target> {
  process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
  process.env.REDIS_URL ??= "redis://127.0.0.1:6379";
  const db = await createTestDatabase();
  // BENCH_PROFILE=1: the server writes a V8 CPU profile into bench/results/profiles when it stops.
  const profiles = fileURLToPath(new URL("../results/profiles", import.meta.url));
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${profiles}`] : [];
  // BENCH_ALLOC_PROFILE=<start ms>[,<ms>]: the server samples what it allocates for a while (lib/alloc-sampler.cjs).
  if (process.env.BENCH_ALLOC_PROFILE) {
    profile.push("--require", fileURLToPath(new URL("./alloc-sampler.cjs", import.meta.url)));
    extraEnv = { ...extraEnv, BENCH_ALLOC_PROFILE: process.env.BENCH_ALLOC_PROFILE, BENCH_ALLOC_PROFILE_DIR: profiles };
    if (process.env.BENCH_ALLOC_SURVIVORS) extraEnv.BENCH_ALLOC_SURVIVORS = "1";
  }
  // BENCH_LOOP_SAMPLE=1: the server samples its event-loop delay and collector pauses (lib/loop-sample.ts).
  const loop = loopSampler("server");
  if (loop) {
    profile.push(...loop.nodeArgs);
    extraEnv = { ...extraEnv, ...loop.env };
  }
  const node = await spawnNode(
    baseEnv(db, {
      BUS_PREFIX: busPrefix(),
      LOG_LEVEL: "warn",
      DATABASE_POOL_SIZE: "20",
      // BENCH_WORKERS: server processes of the node (WORKERS); one by default.
      WORKERS: process.env.BENCH_WORKERS ?? "1",
      // BENCH_SERVER_NODE_OPTIONS: node flags for the server alone (GC tuning experiments), not the load process.
      ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}),
      ...extraEnv,
    }),
    [...profile, ...nodeArgs],
  );
  const workers = Number(process.env.BENCH_WORKERS ?? 1);
  // spawnNode answers when the first worker listens; the load must not start before all of them do.
  while (node.logs.filter((l) => l.includes('"msg":"vignette listening"')).length < workers) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    node,
    loop,
    db,
    mode: { database: "postgresql", bus: "redis", nodes: 1, workers },
    async stop() {
      await node.stop();
      loop?.remove();
      await db.drop();
    },
  };
}
