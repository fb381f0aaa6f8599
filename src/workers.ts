// WORKERS > 1: one node made of several server processes on one port, so that it uses more than one core.
// node:cluster's primary accepts each connection and hands it to the workers in turn; every worker is a whole server
// (own pools, own Redis clients) and the workers meet on Redis exactly as separate nodes do. The primary holds no
// state: it starts the workers, replaces one that dies, and passes SIGTERM/SIGINT on for a drained shutdown.
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "./logger.ts";
import { missingServerArgs } from "./node-args.ts";

const RESTART_DELAY_MS = 1_000;

export function superviseWorkers(count: number, logger: Logger): void {
  let stopping = false;
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...missingServerArgs(process.execArgv, process.env.NODE_OPTIONS)] });
  const fork = () => cluster.fork();
  for (let i = 0; i < count; i++) fork();
  cluster.on("exit", (worker: Worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    // Its clients reconnect to the other workers meanwhile; what they had in flight is in their queues.
    logger.warn({ worker: worker.process.pid, code, signal }, "worker died; starting another");
    setTimeout(() => !stopping && fork(), RESTART_DELAY_MS).unref();
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: count }, "shutting down the workers");
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  }
}
