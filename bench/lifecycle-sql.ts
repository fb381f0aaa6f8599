// bench:lifecycle-sql — the message lifecycle's SQL alone (bench/lib/raw-lifecycle.ts: the server's own send,
// acknowledgement and receipt statements, 100 messages per statement) on one database, at several pool sizes.
// BENCH_AGAINST=<another checkout of this repository, with its node_modules> runs that checkout's statements in
// turn with this tree's, on the same database and pairs, so a change to the statements is measured against its
// baseline in one run whatever the machine's speed is doing. BENCH_RECEIPTS_AS_STATE=1 also runs this tree's
// statements without receipt queue rows (raw-lifecycle.ts, receipts "state"), in turn with the others.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { machine, printTable, record } from "./lib/report.ts";
import { rawLifecycle } from "./lib/raw-lifecycle.ts";
import { seedDevices } from "./lib/seed.ts";
import { startTarget } from "./lib/target.ts";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "2,4,8").split(",").map(Number);
const AGAINST = process.env.BENCH_AGAINST;
const RECEIPTS_AS_STATE = process.env.BENCH_RECEIPTS_AS_STATE === "1";

type Run = typeof rawLifecycle;
const against: Run | null = AGAINST
  ? (await import(pathToFileURL(resolve(AGAINST, "bench/lib/raw-lifecycle.ts")).href)).rawLifecycle
  : null;

const target = await startTarget();
try {
  console.log(`machine: ${JSON.stringify(machine())}`);
  const devices = await seedDevices(target.node.url, target.db.url!, 100);
  const pairs = Array.from({ length: 50 }, (_, i) => ({ sender: devices[i].userId, recipient: devices[50 + i].userId }));
  const opts = { pairs, messages: MESSAGES, batch: 100, payloadBytes: 200 };
  await rawLifecycle(target.db.url!, { ...opts, messages: MESSAGES / 4, connections: 4 });
  const rows: Record<string, unknown>[] = [];
  for (const connections of CONNECTIONS) {
    for (let round = 1; round <= ROUNDS; round++) {
      // The baseline first in odd rounds and second in even ones, so neither always runs on the warmer table.
      const order: [string, Run][] = [
        ["this tree", rawLifecycle],
        ...(against ? [[AGAINST!, against] as [string, Run]] : []),
        ...(RECEIPTS_AS_STATE ? [["this tree, receipts as state", (url, o) => rawLifecycle(url, { ...o, receipts: "state" })] as [string, Run]] : []),
      ];
      for (const [code, run] of round % 2 ? order.reverse() : order) {
        const { messagesPerSecond } = await run(target.db.url!, { ...opts, connections });
        rows.push({ connections, round, code, "msg/s": messagesPerSecond });
      }
    }
  }
  printTable(`bench:lifecycle-sql — ${MESSAGES} messages a run, 50 pairs, 100 per statement`, rows);
  record("lifecycle-sql", { messages: MESSAGES, against: AGAINST ?? null }, rows);
} finally {
  await target.stop();
}
process.exit(0);
