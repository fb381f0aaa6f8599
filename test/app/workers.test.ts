// One node of several server processes (WORKERS=2) on one port, as real processes: connections spread over the
// workers, envelopes cross between them on Redis, and a worker killed with SIGKILL is replaced while the node keeps
// serving. Skipped in embedded mode (workers need PostgreSQL and Redis).
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InboxDocument, type InboxSubscription } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { SERVER_NODE_ARGS } from "../../src/node-args.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { createTestDatabase, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { collect, type Collector } from "../helpers/live.ts";
import { sendOpaque, unb64 } from "../helpers/messaging.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { eventually } from "../helpers/wait.ts";

const texts = (xs: { inbox: InboxSubscription["inbox"] }[]) =>
  xs.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" ? [unb64(x.inbox.envelope.body)] : []));

/** The worker processes under the supervising primary (tsx's esbuild service is a child too, not named node). */
const workers = (node: NodeProcess): number[] => {
  const out = spawnSync("pgrep", ["-x", "-P", String(node.child.pid), "node"]).stdout.toString().trim();
  return out ? out.split("\n").map(Number) : [];
};

/** TCP sockets a process holds (its listening handle, pools and clients). */
const socketCount = (pid: number): number =>
  readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;

describe.skipIf(!usingPostgres || !usingRedis)("WORKERS=2: one node, two processes", () => {
  let db: TestDatabase;
  let node: NodeProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    node = await spawnNode(baseEnv(db, { BUS_PREFIX: busPrefix(), WORKERS: "2" }));
    await eventually(() => expect(node.logs.filter((l) => l.includes('"msg":"vignette listening"'))).toHaveLength(2));
  });
  afterAll(async () => {
    await node?.stop();
    await db?.drop();
  });

  it("spreads connections over both workers and delivers between them; a killed worker is replaced", async () => {
    const pids = workers(node);
    expect(pids).toHaveLength(2);
    // The workers run with the server's node flags (src/node-args.ts), from the primary.
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    for (const pid of pids) for (const arg of SERVER_NODE_ARGS) expect(argv(pid)).toContain(arg);
    const devices: TestDevice[] = [];
    for (let i = 0; i < 6; i++) devices.push(await registerDevice(node.url));
    const before = new Map(pids.map((p) => [p, socketCount(p)]));
    const sockets = devices.map((d) => openWs(node.url, d.token, { retryAttempts: 20 }));
    const inboxes: Collector<{ inbox: InboxSubscription["inbox"] }>[] = sockets.map((s) => collect(s, InboxDocument));
    try {
      // Each device sends to the next: with the sockets dealt out in turn, some pairs sit on different workers.
      await eventually(() => expect(pids.every((p) => socketCount(p) > before.get(p)!)).toBe(true));
      for (let i = 0; i < devices.length; i++) await sendOpaque(devices[i], devices[(i + 1) % devices.length].userId, `ring ${i}`);
      for (let i = 0; i < devices.length; i++) {
        const from = (i + devices.length - 1) % devices.length;
        await inboxes[i].until((xs) => texts(xs).includes(`ring ${from}@1`), 10_000, `ring ${from} at device ${i}`);
      }

      execFileSync("kill", ["-9", String(pids[0])]);
      await eventually(() => {
        const now = workers(node);
        expect(now).toHaveLength(2);
        expect(now).not.toContain(pids[0]);
      }, 20_000);
      // The devices that were on the dead worker reconnect (to either worker) and get what was sent meanwhile.
      for (let i = 0; i < devices.length; i++) await sendOpaque(devices[i], devices[(i + 1) % devices.length].userId, `after ${i}`);
      for (let i = 0; i < devices.length; i++) {
        const from = (i + devices.length - 1) % devices.length;
        await inboxes[i].until((xs) => texts(xs).includes(`after ${from}@1`), 20_000, `after ${from} at device ${i}`);
      }
    } finally {
      await Promise.all(sockets.map((s) => s.dispose()));
    }
  });

  it("refuses WORKERS > 1 without PostgreSQL and Redis, naming the variable", () => {
    const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
    const run = spawnSync(process.execPath, ["--import", "tsx", main], {
      env: { PATH: process.env.PATH, WORKERS: "2", PORT: "0" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain("WORKERS: more than one worker needs DATABASE_URL and REDIS_URL");
  });
});
