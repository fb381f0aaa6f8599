// Shared pieces of the fault tests: a stream of sends whose every outcome is recorded, the accounting that proves
// nothing acknowledged was lost or doubled and nothing unacknowledged was half-stored, a throwaway redis-server, and
// a TCP proxy in front of PostgreSQL that can be cut and restored.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import net from "node:net";
import type pg from "pg";
import { PollInboxDocument, SendMessageDocument, type PollInboxQuery, type SendMessageInput } from "../../src/client/generated/graphql.ts";
import { GraphQLRequestError, HttpTransport } from "../../src/client/transport.ts";
import { afterEach } from "vitest";
import type { TestDevice } from "../helpers/accounts.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/database.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { b64 } from "../helpers/messaging.ts";
import { sleep } from "../helpers/wait.ts";

/**
 * Per test: databases and node processes (src/main.ts children sharing one bus prefix) that are dropped and killed
 * after it, and any other cleanup the test registers.
 */
export function faultFixture() {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  return {
    cleanups,
    async database(): Promise<TestDatabase> {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      return db;
    },
    /** `count` nodes; `extra` is one env for all, or one per node. */
    async nodes(db: TestDatabase, count: number, extra: Record<string, string> | Record<string, string>[] = {}): Promise<NodeProcess[]> {
      const prefix = busPrefix();
      const out: NodeProcess[] = [];
      for (let i = 0; i < count; i++) {
        const own = Array.isArray(extra) ? (extra[i] ?? {}) : extra;
        const n = await spawnNode(baseEnv(db, { BUS_PREFIX: prefix, LOG_LEVEL: "info", ...own }));
        cleanups.push(() => n.stop("SIGKILL"));
        out.push(n);
      }
      return out;
    },
  };
}

export interface SendOutcome {
  input: SendMessageInput;
  messageId?: string;
  error?: string;
}

/** A fresh input for the same recipients: a new clientMessageId and body per send. */
export function nextInput(template: SendMessageInput, n: number): SendMessageInput {
  const env = (e: SendMessageInput["envelopes"][number]) => ({ ...e, body: b64(`m${n}@${e.deviceId}`) });
  return {
    ...template,
    clientMessageId: randomUUID(),
    envelopes: template.envelopes.map(env),
    syncEnvelopes: template.syncEnvelopes?.map(env),
  };
}

export async function sendOnce(via: HttpTransport, input: SendMessageInput): Promise<SendOutcome> {
  try {
    const { sendMessage } = await via.request(SendMessageDocument, { input });
    return { input, messageId: sendMessage.messageId };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { input, error: err instanceof GraphQLRequestError ? (err.code ?? "?") : (e.cause?.code ?? e.message) };
  }
}

/**
 * `workers` senders, each sending one after another through `via`, until stop() is true and each has seen a failure
 * or `max` sends were made. Every outcome is kept.
 */
export async function sendStream(opts: {
  via: HttpTransport;
  template: SendMessageInput;
  workers: number;
  stopAfterFailures?: number;
  max: number;
  onAck?: (acked: number) => void;
}): Promise<SendOutcome[]> {
  const outcomes: SendOutcome[] = [];
  let n = 0;
  let acked = 0;
  await Promise.all(
    Array.from({ length: opts.workers }, async () => {
      let failures = 0;
      while (n < opts.max && failures < (opts.stopAfterFailures ?? 3)) {
        const o = await sendOnce(opts.via, nextInput(opts.template, n++));
        outcomes.push(o);
        if (o.messageId) opts.onAck?.(++acked);
        else {
          failures++;
          await sleep(50);
        }
      }
    }),
  );
  return outcomes;
}

/** Reads a device's whole queue by polling (no acks), returning the envelopes' message ids in queue order. */
export async function drainMessageIds(device: TestDevice, url: string): Promise<string[]> {
  const http = new HttpTransport(url, device.token);
  const ids: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const { inbox }: PollInboxQuery = await http.request(PollInboxDocument, { after, first: 500 });
    if (inbox.length === 0) break;
    for (const e of inbox) if (e.__typename === "EnvelopeEvent") ids.push(e.envelope.messageId);
    const last: PollInboxQuery["inbox"][number] = inbox[inbox.length - 1];
    after = "id" in last && last.id ? String(last.id) : after;
    if (inbox.length < 500) break;
  }
  return ids;
}

/** Every message from the sender is either absent or stored with exactly `copies` queue items: never half-stored. */
export async function halfStored(sql: pg.Client, senderUserId: string, copies: number): Promise<string[]> {
  const r = await sql.query(
    `SELECT m.client_message_id, count(i.id)::int AS n FROM messages m LEFT JOIN inbox_items i ON i.message_id = m.id
     WHERE m.sender_user_id = $1 GROUP BY m.id, m.client_message_id HAVING count(i.id) <> $2`,
    [senderUserId, copies],
  );
  return r.rows.map((row) => `${row.client_message_id}: ${row.n} copies`);
}

export async function storedClientIds(sql: pg.Client, senderUserId: string): Promise<Map<string, string>> {
  const r = await sql.query(`SELECT client_message_id, id FROM messages WHERE sender_user_id = $1`, [senderUserId]);
  return new Map(r.rows.map((row) => [row.client_message_id as string, row.id as string]));
}

/** A redis-server of the test's own on a free port, so the shared one is never touched. */
export async function startRedis(port: number): Promise<{ url: string; kill(): Promise<void> }> {
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("redis-server did not start")), 10_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.once("error", reject);
  });
}

/** The test database reached through a pgProxy: the proxy, and the database as a node sees it through it. */
export async function proxiedDatabase<D extends { url?: string | null }>(db: D) {
  const real = new URL(db.url!);
  const proxy = await pgProxy({ host: real.hostname, port: Number(real.port || 5432) });
  const via = new URL(db.url!);
  via.port = String(proxy.port);
  return { proxy, db: { ...db, env: { DATABASE_URL: via.toString() } } };
}

/**
 * A TCP proxy to PostgreSQL: cut() drops every connection and refuses new ones; restore() listens again.
 * blackhole() keeps accepting connections but forwards nothing either way, as a network that drops packets (no
 * reset, no refusal); release() forwards again, what was held first, as TCP delivers once a partition heals.
 */
export async function pgProxy(target: { host: string; port: number }) {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  let holding = false;
  const held: (() => void)[] = [];
  const forward = (from: net.Socket, to: net.Socket) =>
    from.on("data", (chunk: Buffer) => (holding ? held.push(() => to.write(chunk)) : to.write(chunk)));
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => {});
        }
        forward(client, upstream);
        forward(upstream, client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  await listen();
  return {
    port,
    async cut() {
      const s = server as net.Server | null;
      server = null;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
    restore: listen,
    blackhole() {
      holding = true;
    },
    release() {
      holding = false;
      for (const write of held.splice(0)) write();
    },
    async close() {
      await this.cut();
    },
  };
}
