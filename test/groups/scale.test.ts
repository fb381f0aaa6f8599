// A 1,500-member group: three real ts-mls members, the other 1,497 registered devices with real key packages and
// live `groupEvents` subscriptions that only count deliveries (1,497 ts-mls joins would take ~40 CPU-minutes).
// PostgreSQL only: it is the bounded, heavier test; timings are printed, never asserted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupDocument } from "../../src/client/generated/graphql.ts";
import { MlsKeyPackages } from "../../src/client/mls/key-packages.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { createTestDatabase, sqlClient, usingPostgres, type TestDatabase } from "../helpers/database.ts";
import { EventFeed, LiveMember, mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { sleep } from "../helpers/wait.ts";

const SIZE = 1500;

async function pool<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** Waits, with one overall deadline, until every feed satisfies `pred`. */
async function everyFeed(feeds: EventFeed[], pred: (ev: EventFeed["events"]) => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  for (;;) {
    const missing = feeds.filter((f) => !pred(f.events)).length;
    if (missing === 0) return;
    if (Date.now() > deadline) throw new Error(`${missing} of ${feeds.length} devices never got ${what}`);
    await sleep(250);
  }
}

describe.skipIf(!usingPostgres)("a group of 1,500 members", () => {
  // The server runs in its own process: 1,500 sockets and the client-side MLS work stay out of its event loop.
  let db: TestDatabase;
  let server: NodeProcess;
  let real: MlsMember[];
  let live: LiveMember[];
  let counted: TestDevice[];
  let feeds: EventFeed[];
  let groupId: string;
  const t0 = Date.now();
  const lap = (what: string) => console.log(`[scale] ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await spawnNode(
      baseEnv(db, {
        BUS_PREFIX: busPrefix(),
        DATABASE_POOL_SIZE: "20",
        LOG_LEVEL: "info",
        // The 1,500-member commit on a machine busy with other test files: room beyond the production timeouts.
        DATABASE_CONNECT_TIMEOUT_MS: "30000",
        DATABASE_STATEMENT_TIMEOUT_MS: "120000",
        DATABASE_QUERY_TIMEOUT_MS: "130000",
      }),
    );
    real = await Promise.all([1, 2, 3].map(() => mlsMember(server.url, 2)));
    counted = await pool(Array.from({ length: SIZE - real.length }), 8, async () => {
      const d = await registerDevice(server.url, { oneTimeKeys: 0 });
      await new MlsKeyPackages(new MemoryKeyValueStore(), d.http, d.address).upload(1);
      return d;
    });
    lap(`registered ${SIZE} devices with a key package each`);
    live = real.map((m) => new LiveMember(m, server.url, 5));
    // Opened a few at a time: 1,500 sockets at once would outrun the server's 3 s connection_init deadline here.
    feeds = await pool(counted, 25, async (d) => {
      // Retries: a socket that loses its connection (the machine is busy) reconnects and resubscribes.
      const f = new EventFeed(server.url, d.token, undefined, 5);
      await f.connected;
      return f;
    });
    lap("opened 1,500 subscriptions");
  }, 600_000);

  afterAll(async () => {
    // The server's own errors, if any, make a failure here readable.
    const errors = (server?.logs ?? []).filter((l) => /"level":(50|60)/.test(l));
    if (errors.length) console.log(`[scale] server errors:\n${errors.slice(0, 5).join("\n")}`);
    await Promise.all([...(live ?? []), ...(feeds ?? [])].map((f) => f.close().catch(() => undefined)));
    await server?.stop();
    await db?.drop();
  }, 120_000);

  it("one commit adds 1,499 members; one application message reaches all 1,500 devices; a 1,501st is refused", async () => {
    const [creator, second, third] = real;
    groupId = await creator.mls.createGroup({
      name: "big",
      memberUserIds: [second.userId, third.userId, ...counted.map((d) => d.userId)],
    });
    lap("group created and 1,499 added in one commit");
    const { group } = await creator.http.request(GroupDocument, { id: groupId });
    expect(group).toMatchObject({ epoch: 1, memberCount: SIZE });

    // Every counted device got its welcome; the real ones joined from theirs.
    await everyFeed(feeds, (ev) => ev.some((e) => e.groupId === groupId && e.kind === "WELCOME"), 300_000, "the welcome");
    await live[1].waitForUpdate((u) => u.groupId === groupId && !!u.joined, 400_000);
    await live[2].waitForUpdate((u) => u.groupId === groupId && !!u.joined, 400_000);
    lap("all welcomes delivered, two real members joined");

    const messageId = await second.mls.send(groupId, text("hello 1,500"));
    const got = (f: EventFeed) => f.events.some((e) => e.id === messageId && e.kind === "APPLICATION");
    await everyFeed([...feeds, ...live.map((l) => l.feed)], (ev) => ev.some((e) => e.id === messageId), 300_000, "the message");
    lap("one application message delivered to 1,500 devices");
    expect([...feeds, ...live.map((l) => l.feed)].filter(got)).toHaveLength(SIZE);
    expect(await live[0].waitForTexts(groupId, 1, 120_000)).toEqual(["hello 1,500"]);
    expect(await live[2].waitForTexts(groupId, 1, 120_000)).toEqual(["hello 1,500"]);
    // Stored once for the group, not once per member.
    const sql = await sqlClient(db.url!);
    const { rows } = await sql.query("SELECT count(*)::int AS n FROM group_messages WHERE group_id = $1 AND kind = 'APPLICATION'", [groupId]);
    await sql.end();
    expect(rows[0].n).toBe(1);

    // The 1,501st member is refused, and the group is unchanged.
    const extra = await mlsMember(server.url, 1);
    const err = await creator.mls.add(groupId, [extra.userId]).catch((e) => e as GraphQLRequestError);
    expect(err).toBeInstanceOf(GraphQLRequestError);
    expect((err as GraphQLRequestError).code).toBe("LIMIT_EXCEEDED");
    const after = (await creator.http.request(GroupDocument, { id: groupId })).group!;
    expect(after).toMatchObject({ epoch: 1, memberCount: SIZE });
  }, 1_200_000);
});
