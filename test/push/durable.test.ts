// Push wake-ups across processes: server nodes as child processes trusting the local push service through
// NODE_EXTRA_CA_CERTS (read at process start). A node killed with SIGKILL while its pushes are in flight sends them
// after restart, once; a device connected on another node gets no push (that part needs PostgreSQL and Redis).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InboxDocument, PushConfigDocument, RegisterPushDocument } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { createTestDatabase, sqlClient, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { collect } from "../helpers/live.ts";
import { eventually, sleep } from "../helpers/wait.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { makeCert, pushEnv, startPushService, Subscriber, verifyVapid, type PushServiceHandle, type TestCert } from "./fake-browser.ts";

let cert: TestCert;
let service: PushServiceHandle;
let db: TestDatabase;
let dataDir: string;
let env: Record<string, string>;
const nodes: NodeProcess[] = [];

async function node(): Promise<NodeProcess> {
  const n = await spawnNode(env);
  nodes.push(n);
  return n;
}

beforeAll(async () => {
  cert = makeCert();
  service = await startPushService(cert);
  db = await createTestDatabase();
  // Embedded mode: a PGlite directory that outlives the process (and holds the generated VAPID keys).
  dataDir = mkdtempSync(join(tmpdir(), "vg-push-data-"));
  // The certificate through NODE_EXTRA_CA_CERTS (read at process start), not PUSH_CA_FILE; with PGlite the VAPID
  // pair is the one generated into DATA_DIR on first start (and found there on restart).
  const { PUSH_CA_FILE: _ca, PUSH_VAPID_PUBLIC_KEY: pub, PUSH_VAPID_PRIVATE_KEY: priv, ...push } = pushEnv(cert);
  env = baseEnv(db, {
    ...(db.url ? { PUSH_VAPID_PUBLIC_KEY: pub, PUSH_VAPID_PRIVATE_KEY: priv } : { DATA_DIR: dataDir }),
    ...push,
    BUS_PREFIX: busPrefix(),
    NODE_EXTRA_CA_CERTS: cert.certFile,
    PUSH_COALESCE_SECONDS: "600",
    PRESENCE_TTL_MS: "2000",
  });
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
  await service?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function subscribe(device: TestDevice, id: string) {
  const sub = new Subscriber();
  await device.http.request(RegisterPushDocument, { input: { kind: "WEB_PUSH", endpoint: service.endpoint(id), ...sub.keys() } });
}

describe("push across a crash", () => {
  it("a node killed with pushes in flight sends each after restart, once", async () => {
    let n1 = await node();
    const alice = await registerDevice(n1.url);
    const vapidKey = (await alice.http.request(PushConfigDocument)).pushConfig.vapidPublicKey!;
    const bobs: TestDevice[] = [];
    for (let i = 0; i < 3; i++) {
      const bob = await registerDevice(n1.url);
      await subscribe(bob, `crash${i}`);
      bobs.push(bob);
    }
    // The push service takes the requests and never answers: each push is in flight (leased) when the node dies.
    const inFlight = new Set<string>();
    service.answer = (id) => (inFlight.add(id), "hang");
    for (const bob of bobs) await sendOpaque(alice, bob.userId, "sent before the crash");
    await eventually(() => expect(inFlight.size).toBe(3));
    n1.child.kill("SIGKILL");
    await n1.exited;

    service.answer = () => 201;
    n1 = await node();
    for (let i = 0; i < 3; i++) await eventually(() => expect(service.accepted(`crash${i}`)).toHaveLength(1), 30_000);
    await sleep(1500); // past one more lease and several polls: nothing is sent twice
    for (let i = 0; i < 3; i++) expect(service.accepted(`crash${i}`)).toHaveLength(1);
    // Signed with the key subscriptions were made against before the crash (embedded mode: kept in DATA_DIR).
    for (let i = 0; i < 3; i++) verifyVapid(service.accepted(`crash${i}`)[0].headers.authorization, vapidKey, service.origin);
    await n1.stop();
  });
});

describe.skipIf(!usingPostgres || !usingRedis)("push across nodes", () => {
  it("a device connected on another node gets no push; once it leaves, it does", async () => {
    const [n1, n2] = [await node(), await node()];
    const alice = await registerDevice(n1.url);
    const bob = await registerDevice(n1.url);
    await subscribe(bob, "nodes");
    const ws = openWs(n2.url, bob.token);
    const inbox = collect(ws, InboxDocument);
    await inbox.until(() => true);
    // The connection is in presence (shared in Redis) before the send.
    const redis = new Redis(process.env.REDIS_URL!);
    await eventually(async () => expect(await redis.scard(`${env.BUS_PREFIX}presence:devices:${bob.userId}`)).toBe(1));
    await sendOpaque(alice, bob.userId, "you are here"); // through node 1
    await inbox.until((xs) => xs.some((x) => x.inbox.__typename === "EnvelopeEvent"));
    await sleep(1000);
    expect(service.received.filter((r) => r.path === "/push/nodes")).toHaveLength(0);
    const sql = await sqlClient(db.url!);
    try {
      expect((await sql.query("SELECT count(*)::int AS n FROM push_pending")).rows[0].n).toBe(0);
    } finally {
      await sql.end();
    }

    await ws.dispose();
    await eventually(async () => expect(await redis.scard(`${env.BUS_PREFIX}presence:devices:${bob.userId}`)).toBe(0));
    redis.disconnect();
    await sendOpaque(alice, bob.userId, "now you are away");
    await eventually(() => expect(service.accepted("nodes")).toHaveLength(1));
  });
});
