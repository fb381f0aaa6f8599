// A 1,500-member group: three real ts-mls members, the other 1,497 registered devices with real key packages and
// live `groupEvents` subscriptions that only count deliveries (1,497 ts-mls joins would take ~40 CPU-minutes).
// PostgreSQL only: it is the bounded, heavier test; timings are printed, never asserted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupDocument } from "../src/client/generated/graphql.ts";
import { MlsKeyPackages } from "../src/client/mls/key-packages.ts";
import { MemoryKeyValueStore } from "../src/client/signal/kv.ts";
import { GraphQLRequestError } from "../src/client/transport.ts";
import { registerDevice, type TestDevice } from "./helpers/accounts.ts";
import { usingPostgres } from "./helpers/database.ts";
import { EventFeed, LiveMember, mlsMember, text, type MlsMember } from "./helpers/groups.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

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

describe.skipIf(!usingPostgres)("a group of 1,500 members", () => {
  let server: TestServer;
  let real: MlsMember[];
  let live: LiveMember[];
  let counted: TestDevice[];
  let feeds: EventFeed[];
  let groupId: string;
  const t0 = Date.now();
  const lap = (what: string) => console.log(`[scale] ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  beforeAll(async () => {
    server = await startServer({ DATABASE_POOL_SIZE: "20" });
    real = await Promise.all([1, 2, 3].map(() => mlsMember(server.url, 2)));
    counted = await pool(Array.from({ length: SIZE - real.length }), 16, async () => {
      const d = await registerDevice(server.url, { oneTimeKeys: 0 });
      await new MlsKeyPackages(new MemoryKeyValueStore(), d.http, d.address).upload(1);
      return d;
    });
    lap(`registered ${SIZE} devices with a key package each`);
    live = real.map((m) => new LiveMember(m, server.url));
    feeds = counted.map((d) => new EventFeed(server.url, d.token));
    lap("opened 1,500 subscriptions");
  }, 600_000);

  afterAll(async () => {
    await Promise.all([...(live ?? []), ...(feeds ?? [])].map((f) => f.close().catch(() => undefined)));
    await server?.close();
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
    await pool(feeds, 50, (f) => f.waitFor((ev) => ev.some((e) => e.groupId === groupId && e.kind === "WELCOME"), 120_000, "welcome"));
    await live[1].waitForUpdate((u) => u.groupId === groupId && !!u.joined, 60_000);
    await live[2].waitForUpdate((u) => u.groupId === groupId && !!u.joined, 60_000);
    lap("all welcomes delivered, two real members joined");

    const messageId = await second.mls.send(groupId, text("hello 1,500"));
    const got = (f: EventFeed) => f.events.some((e) => e.id === messageId && e.kind === "APPLICATION");
    await pool([...feeds, ...live.map((l) => l.feed)], 50, (f) => f.waitFor((ev) => ev.some((e) => e.id === messageId), 120_000, "the message"));
    lap("one application message delivered to 1,500 devices");
    expect([...feeds, ...live.map((l) => l.feed)].filter(got)).toHaveLength(SIZE);
    expect(await live[0].waitForTexts(groupId, 1, 30_000)).toEqual(["hello 1,500"]);
    expect(await live[2].waitForTexts(groupId, 1, 30_000)).toEqual(["hello 1,500"]);
    // Stored once for the group, not once per member.
    const stored = await server.app.services.deps.prisma.groupMessage.count({ where: { groupId, kind: "APPLICATION" } });
    expect(stored).toBe(1);

    // The 1,501st member is refused, and the group is unchanged.
    const extra = await mlsMember(server.url, 1);
    const err = await creator.mls.add(groupId, [extra.userId]).catch((e) => e as GraphQLRequestError);
    expect(err).toBeInstanceOf(GraphQLRequestError);
    expect((err as GraphQLRequestError).code).toBe("LIMIT_EXCEEDED");
    const after = (await creator.http.request(GroupDocument, { id: groupId })).group!;
    expect(after).toMatchObject({ epoch: 1, memberCount: SIZE });
  }, 600_000);
});
