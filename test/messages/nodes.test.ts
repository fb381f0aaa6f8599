// Several nodes sharing PostgreSQL and Redis, as real processes: live events cross nodes, and a node killed with
// SIGKILL loses nothing. Skipped in embedded mode (they need PostgreSQL and Redis).
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AckEnvelopesDocument,
  ConversationsDocument,
  InboxDocument,
  MeDocument,
  PresenceUpdatesDocument,
  TypingDocument,
  type InboxSubscription,
} from "../../src/client/generated/graphql.ts";
import { HttpTransport, openWs, wsRequest } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { createTestDatabase, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { collect } from "../helpers/live.ts";
import { accept, refreshUntilSeen, sendOpaque, unb64 } from "../helpers/messaging.ts";
import { baseEnv, busPrefix, spawnNode, startServer, type NodeProcess } from "../helpers/server.ts";
import { sleep } from "../helpers/wait.ts";

type Ev = InboxSubscription["inbox"];
const bodies = (xs: { inbox: Ev }[]) =>
  xs.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" ? [{ id: x.inbox.id, text: unb64(x.inbox.envelope.body) }] : []));
const on = (d: TestDevice, node: NodeProcess): TestDevice => ({ ...d, http: new HttpTransport(node.url, d.token) });

describe.skipIf(!usingPostgres || !usingRedis)("two nodes", () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let node1: NodeProcess;
  let node2: NodeProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    env = baseEnv(db, { BUS_PREFIX: busPrefix(), PRESENCE_TTL_MS: "2000", TYPING_TTL_MS: "3000", LOG_LEVEL: "info" });
    node1 = await spawnNode(env);
    node2 = await spawnNode(env);
  });
  afterAll(async () => {
    await Promise.all([node1?.stop(), node2?.stop()]);
    await db?.drop();
  });

  it("a send on node 1 reaches a device subscribed on node 2; receipts, typing and presence cross too", async () => {
    const alice = await registerDevice(node1.url);
    const bob = on(await registerDevice(node1.url), node2);
    await accept(bob, alice); // receipts and presence only to senders bob accepted (test/consent/)
    await sendOpaque(alice, bob.userId, "first");
    const conversationId = (await alice.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;

    const wsAlice = openWs(node1.url, alice.token);
    const wsBob = openWs(node2.url, bob.token);
    try {
      const aliceInbox = collect(wsAlice, InboxDocument);
      const watch = collect(wsAlice, PresenceUpdatesDocument, { userIds: [bob.userId] });
      await watch.until((xs) => xs.length >= 1);
      const bobInbox = collect(wsBob, InboxDocument);
      const typing = collect(wsBob, TypingDocument, { conversationId });
      await watch.until((xs) => xs.some((x) => x.presence.online), 10_000, "bob online (node 2) seen on node 1");
      await bobInbox.until((xs) => bodies(xs).length === 1);

      await sendOpaque(alice, bob.userId, "second"); // HTTP to node 1
      const got = await bobInbox.until((xs) => bodies(xs).length === 2, 10_000, "live envelope across nodes");
      expect(bodies(got).map((b) => b.text)).toEqual(["first@1", "second@1"]);

      await bob.http.request(AckEnvelopesDocument, { ids: bodies(got).map((b) => b.id) }); // HTTP to node 2
      // One ack call of both: one receipt listing both messages (receipts of a batch are coalesced).
      const listed = (xs: typeof aliceInbox.items) =>
        xs.flatMap((x) => (x.inbox.__typename === "ReceiptEvent" ? x.inbox.messageIds : []));
      await aliceInbox.until((xs) => listed(xs).length === 2, 10_000, "receipts for both messages");

      await refreshUntilSeen(alice, conversationId, typing);
      await typing.until((xs) => xs.some((x) => x.typing.isTyping && x.typing.userId === alice.userId), 10_000, "typing");

      await wsBob.dispose();
      await watch.until((xs) => !xs[xs.length - 1].presence.online, 10_000, "bob offline");
      expect(watch.items[watch.items.length - 1].presence.lastSeen).not.toBeNull();
      [aliceInbox, watch, bobInbox, typing].forEach((s) => s.stop());
    } finally {
      await Promise.all([wsAlice.dispose(), wsBob.dispose()]);
    }
  });

  it("kill -9 of a node: its device reconnects to the other and loses nothing; presence expires by itself", async () => {
    const victim = await spawnNode(env);
    const alice = await registerDevice(node1.url);
    const bob = await registerDevice(node1.url);
    await accept(bob, alice);
    await sendOpaque(alice, bob.userId, "hello");
    const wsAlice = openWs(node1.url, alice.token);
    const wsBob = openWs(victim.url, bob.token);
    try {
      const watch = collect(wsAlice, PresenceUpdatesDocument, { userIds: [bob.userId] });
      const before = collect(wsBob, InboxDocument);
      await watch.until((xs) => xs.some((x) => x.presence.online), 10_000, "bob online");
      const sent = ["hello@1"];
      for (let i = 0; i < 5; i++) {
        await sendOpaque(alice, bob.userId, `pre${i}`);
        sent.push(`pre${i}@1`);
      }
      await before.until((xs) => bodies(xs).length === 6, 10_000, "live before the kill");
      // Bob acknowledges only some of what he got: the rest must come again.
      const acked = bodies(before.items).slice(0, 3);
      await new HttpTransport(node1.url, bob.token).request(AckEnvelopesDocument, { ids: acked.map((a) => a.id) });

      const sending = (async () => {
        for (let i = 0; i < 10; i++) {
          await sendOpaque(alice, bob.userId, `during${i}`);
          sent.push(`during${i}@1`);
        }
      })();
      await sleep(20);
      const killedAt = Date.now();
      await victim.stop("SIGKILL");
      await sending;

      // Presence: nobody closed Bob's connection cleanly; its entry expires (TTL 2 s + a beat) and a node reaps it.
      await watch.until((xs) => !xs[xs.length - 1].presence.online, 10_000, "bob offline after kill -9");
      expect(Date.now() - killedAt).toBeLessThan(10_000);

      const wsBob2 = openWs(node1.url, bob.token);
      try {
        const after = collect(wsBob2, InboxDocument);
        const expected = sent.length - acked.length;
        await after.until((xs) => bodies(xs).length >= expected, 15_000, "the queue after reconnecting");
        await sleep(300);
        const again = bodies(after.items).map((b) => b.text);
        expect(new Set(again).size).toBe(again.length);
        expect(new Set([...again, ...acked.map((a) => a.text)])).toEqual(new Set(sent));
        expect(again.length + acked.length).toBe(sent.length);
        after.stop();
      } finally {
        await wsBob2.dispose();
      }
      watch.stop();
    } finally {
      await Promise.all([wsAlice.dispose(), Promise.resolve(wsBob.dispose()).catch(() => {})]);
      await victim.stop("SIGKILL");
    }
  });
});

describe.skipIf(!usingRedis)("losing the Redis subscriber connection", () => {
  it("re-reads the queue on reconnect, so events published while it was away still arrive once", async () => {
    const prefix = busPrefix();
    const server = await startServer({ BUS_PREFIX: prefix });
    const admin = new Redis(process.env.REDIS_URL!);
    try {
      const alice = await registerDevice(server.url);
      const bob = await registerDevice(server.url);
      const ws = openWs(server.url, bob.token, { lazy: false });
      await wsRequest(ws, MeDocument);
      const sub = collect(ws, InboxDocument);
      await sendOpaque(alice, bob.userId, "before");
      await sub.until((xs) => bodies(xs).length === 1);

      // Kill only this server's subscriber connection (named after its bus prefix), then send at once, while it is
      // away: those live events are lost on the bus and must come from the queue.
      const list = (await admin.call("CLIENT", "LIST", "TYPE", "pubsub")) as string;
      const ids = list
        .split("\n")
        .filter((l) => l.includes(`name=${prefix}sub`))
        .map((l) => /id=(\d+)/.exec(l)![1]);
      expect(ids).toHaveLength(1);
      await admin.call("CLIENT", "KILL", "ID", ids[0]);
      for (let i = 0; i < 3; i++) await sendOpaque(alice, bob.userId, `gap${i}`);
      await sendOpaque(alice, bob.userId, "after");

      const got = await sub.until((xs) => bodies(xs).length >= 5, 15_000, "events from the gap");
      await sleep(300);
      expect(bodies(got).map((b) => b.text).sort()).toEqual(["after@1", "before@1", "gap0@1", "gap1@1", "gap2@1"]);
      sub.stop();
      await ws.dispose();
    } finally {
      admin.disconnect();
      await server.close();
    }
  });
});

describe.skipIf(!usingRedis)("subscriptions and the bus", () => {
  it("leave no Redis subscription behind after unsubscribe or a closed socket", async () => {
    const prefix = busPrefix();
    const server = await startServer({ BUS_PREFIX: prefix });
    const admin = new Redis(process.env.REDIS_URL!);
    const numsub = async (channel: string) => {
      const r = (await admin.call("PUBSUB", "NUMSUB", prefix + channel)) as [string, number];
      return Number(r[1]);
    };
    try {
      const alice = await registerDevice(server.url);
      const bob = await registerDevice(server.url);
      await sendOpaque(alice, bob.userId, "hi");
      const conversationId = (await bob.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;
      const inboxChannel = `device:${bob.userId}:1`;
      for (const close of ["unsubscribe", "socket"] as const) {
        const ws = openWs(server.url, bob.token);
        const subs = [
          collect(ws, InboxDocument),
          collect(ws, TypingDocument, { conversationId }),
          collect(ws, PresenceUpdatesDocument, { userIds: [alice.userId] }),
        ];
        await subs[0].until((xs) => xs.length >= 1);
        await subs[2].until((xs) => xs.length >= 1);
        expect(await numsub(inboxChannel)).toBe(1);
        expect(await numsub(`conversation:${conversationId}`)).toBe(1);
        expect(await numsub(`presence:${alice.userId}`)).toBe(1);
        if (close === "unsubscribe") subs.forEach((s) => s.stop());
        else await ws.terminate();
        for (const ch of [inboxChannel, `conversation:${conversationId}`, `presence:${alice.userId}`]) {
          let n = -1;
          for (let i = 0; i < 50 && n !== 0; i++) {
            n = await numsub(ch);
            if (n) await sleep(100);
          }
          expect(n, `${ch} after ${close}`).toBe(0);
        }
        await ws.dispose();
      }
    } finally {
      admin.disconnect();
      await server.close();
    }
  });
});
