// Memory and time bounds with real processes (src/main.ts children), real PostgreSQL and Redis: a subscriber that
// stops reading while 5,000 large envelopes arrive, and a PostgreSQL that stops answering (packets dropped, not
// refused). Each test prints what it measured. Run with `npm run test:faults` (DATABASE_URL and REDIS_URL set).
// The first sends 1.25 GiB through the node: about 4 minutes on the 2-core test machine (BOUNDS_ENVELOPES=1000 for
// a quicker look).
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { InboxDocument, SendMessageDocument, type InboxSubscription, type SendMessageInput } from "../../src/client/generated/graphql.ts";
import { HttpTransport, openWs, wsUrl } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { createTestDatabase, sqlClient, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { collect } from "../helpers/live.ts";
import { opaqueInput } from "../helpers/messaging.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { nextInput, proxiedDatabase, sendOnce } from "./helpers.ts";
import { eventually } from "../helpers/wait.ts";

const enabled = usingPostgres && usingRedis;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

const MiB = 1024 * 1024;

async function node(db: TestDatabase, extra: Record<string, string> = {}, nodeArgs: string[] = []): Promise<NodeProcess> {
  const n = await spawnNode(baseEnv(db, { BUS_PREFIX: busPrefix(), ...extra }), nodeArgs);
  cleanups.push(() => n.stop("SIGKILL"));
  return n;
}

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  return db;
}

/** A process's resident memory now and at its peak (VmHWM), in MiB, read from outside it. */
function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { now: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

const envelopeIds = (items: InboxSubscription[]) =>
  items.flatMap((i) => (i.inbox.__typename === "EnvelopeEvent" ? [i.inbox.envelope.messageId] : []));

describe.skipIf(!enabled)("memory and time bounds", () => {
  it("5,000 unread 256 KiB envelopes: the node stays under its bound, drops the slow socket, serves others, keeps the queue", async () => {
    const COUNT = Number(process.env.BOUNDS_ENVELOPES ?? 5_000);
    // Stated bound: the Feed may hold INBOX_BUFFER_BYTES (16 MiB) for the slow socket, ws/TCP buffers a few MiB more,
    // and the senders' requests in flight (8 x ~350 KB of JSON and its copies) come and go. Before the byte budget,
    // the Feed held up to 2,000 events: 512 MiB of bodies alone.
    const BOUND_MIB = 300;
    // The old generation capped as an operator would run the node: V8 otherwise lets garbage pile up towards its
    // default limit (4 GiB here), so the peak followed how far collection lagged behind the flood (257 and 355 MiB
    // in two CI runs of the same code) rather than what the node holds. Under the cap, anything the node really kept
    // past it ends the process, and the test with it (a Feed allowed 2 GiB did, within 24 s).
    const HEAP_CAP_MIB = 256;
    const db = await database();
    const n = await node(db, {}, [`--max-old-space-size=${HEAP_CAP_MIB}`]);
    const alice = await registerDevice(n.url);
    const bob = await registerDevice(n.url);
    const carol = await registerDevice(n.url);
    const dave = await registerDevice(n.url);

    let raw: WebSocket | undefined;
    class Grab extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        raw = this; // eslint-disable-line @typescript-eslint/no-this-alias
      }
    }
    const slow = createClient({ url: wsUrl(n.url), webSocketImpl: Grab, connectionParams: { authorization: `Bearer ${bob.token}` }, retryAttempts: 0 });
    cleanups.push(async () => slow.dispose());
    const slowSub = collect(slow, InboxDocument);
    const aliceHttp = new HttpTransport(n.url, alice.token);
    // 192 KiB of text is 256 KiB of base64: the envelope limit (MAX_ENVELOPE_BYTES) on the decoded body is 256 KiB.
    const template: SendMessageInput = await opaqueInput(alice, bob.userId, "x".repeat(192 * 1024 - 8));
    const big = (): SendMessageInput => ({ ...template, clientMessageId: randomUUID() });
    await aliceHttp.request(SendMessageDocument, { input: big() });
    await slowSub.until((xs) => envelopeIds(xs).length === 1, 30_000, "the first envelope");
    // Bob stops reading: the TCP buffers fill, then whatever the server holds for this subscription.
    (raw as unknown as { _socket: { pause(): void } })._socket.pause();

    // Someone else, served all along: dave's live inbox, carol's sends.
    const daveWs = openWs(n.url, dave.token);
    cleanups.push(async () => daveWs.dispose());
    const daveSub = collect(daveWs, InboxDocument);
    const carolTemplate = await opaqueInput(carol, dave.userId, "hello");
    const carolHttp = new HttpTransport(n.url, carol.token);

    const before = rss(n.child.pid!);
    const t0 = Date.now();
    let sent = 1;
    let carolSent = 0;
    const errors: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < COUNT) {
          const mine = ++sent;
          const r = await sendOnce(aliceHttp, big());
          if (r.error) errors.push(r.error);
          if (mine % 1_000 === 0) console.log(`${mine} sent in ${Math.round((Date.now() - t0) / 1000)} s, RSS ${Math.round(rss(n.child.pid!).now)} MiB`);
          if (mine % 500 === 0) {
            const c = await sendOnce(carolHttp, nextInput(carolTemplate, carolSent++));
            if (c.error) errors.push(`carol: ${c.error}`);
          }
        }
      }),
    );
    await daveSub.until((xs) => envelopeIds(xs).length === carolSent, 30_000, "carol's envelopes, live, during the flood");
    const after = rss(n.child.pid!);
    const dropped = n.logs.some((l) => l.includes("dropping a slow websocket consumer"));
    const sql = await sqlClient(db.url!);
    let queued: number;
    try {
      queued = (await sql.query(`SELECT count(*)::int AS n FROM inbox_items WHERE user_id = $1`, [bob.userId])).rows[0].n;
    } finally {
      await sql.end();
    }
    console.log("slow consumer:", {
      envelopes: COUNT, bodyKiB: 256, rssBeforeMiB: Math.round(before.now), rssAfterMiB: Math.round(after.now),
      peakMiB: Math.round(after.peak), growthMiB: Math.round(after.peak - before.now), boundMiB: BOUND_MIB, dropped, queued, carolSent,
    });
    expect(errors).toEqual([]);
    expect(after.peak - before.now).toBeLessThan(BOUND_MIB);
    expect(dropped).toBe(true);
    expect(queued).toBe(COUNT); // nothing acknowledged, nothing lost: all still queued
    expect(n.child.exitCode).toBeNull();

    // Bob comes back: a new connection reads his queue from the start.
    (raw as unknown as { _socket: { resume(): void } })._socket.resume();
    await eventually(() => expect(slowSub.errors.length + (slowSub.completed ? 1 : 0)).toBeGreaterThan(0), 30_000);
    const again = openWs(n.url, bob.token);
    cleanups.push(async () => again.dispose());
    const back = collect(again, InboxDocument);
    await back.until((xs) => envelopeIds(xs).length >= 200, 60_000, "bob's queue on a new connection");
    back.stop();
  }, 480_000);

  it("PostgreSQL black-holed (packets dropped, not refused): sendMessage answers UNAVAILABLE within the timeout, then recovers", async () => {
    const QUERY_TIMEOUT_MS = 3_000;
    const CONNECT_TIMEOUT_MS = 2_000;
    const db = await database();
    const { proxy, db: proxied } = await proxiedDatabase(db);
    cleanups.push(() => proxy.close());
    const n = await node(proxied, {
      DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      DATABASE_STATEMENT_TIMEOUT_MS: String(QUERY_TIMEOUT_MS - 500),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
    });
    const alice = await registerDevice(n.url);
    const bob = await registerDevice(n.url);
    const template = await opaqueInput(alice, bob.userId, "t");
    const via = new HttpTransport(n.url, alice.token);
    let k = 0;
    for (let i = 0; i < 5; i++) expect((await sendOnce(via, nextInput(template, k++))).error).toBeUndefined();

    proxy.blackhole();
    // Several at once: some wait on a pooled connection whose query never answers, others for a connection.
    const started = Date.now();
    const during = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const r = await sendOnce(via, nextInput(template, k++));
        return { ...r, ms: Date.now() - started };
      }),
    );
    const codes = [...new Set(during.map((o) => o.error ?? "SUCCESS"))];
    const slowest = Math.max(...during.map((o) => o.ms));
    proxy.release();
    const recoveredAt = Date.now();
    const after = await eventually(async () => {
      const r = await sendOnce(via, nextInput(template, k++));
      if (r.error) throw new Error(r.error);
      return r;
    }, 30_000);
    console.log("PostgreSQL black-holed:", { attempts: during.length, codes, slowestMs: slowest, recoveryMs: Date.now() - recoveredAt,
      connectTimeoutMs: CONNECT_TIMEOUT_MS, queryTimeoutMs: QUERY_TIMEOUT_MS });
    expect(codes).toEqual(["UNAVAILABLE"]);
    // Within the configured timeouts (a connect wait and a reply wait at most), with room for a loaded machine.
    expect(slowest).toBeLessThan(CONNECT_TIMEOUT_MS + QUERY_TIMEOUT_MS + 5_000);
    expect(after.messageId).toBeTruthy();
    expect(n.child.exitCode).toBeNull();
  }, 180_000);
});
