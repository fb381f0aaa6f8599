// A Redis SUBSCRIBE that fails (here: refused by a Redis ACL that lets this node's connection use every channel but
// the group ones, a real NOPERM from a real Redis) must end only the affected stream, with an error the client sees,
// never the process: before the fix, a device creating a group while its inbox was open became an unhandled
// rejection and the node exited.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupEventsDocument, InboxDocument, MeDocument, PresenceUpdatesDocument } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { createTestDatabase, usingRedis } from "../helpers/database.ts";
import { mlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { baseEnv, busPrefix, spawnNode } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const code = (err: unknown) => (err as { code?: string }).code;

/** A node whose Redis user may use only these channel kinds (Redis channel permissions are allow-lists). */
async function nodeWithChannels(admin: Redis, kinds: string[]) {
  const prefix = busPrefix();
  const user = `vgtest-${randomBytes(4).toString("hex")}`;
  await admin.call("ACL", "SETUSER", user, "on", ">pw", "~*", "resetchannels", ...kinds.map((c) => `&${prefix}${c}`), "+@all");
  const redisUrl = new URL(process.env.REDIS_URL!);
  redisUrl.username = user;
  redisUrl.password = "pw";
  const db = await createTestDatabase();
  const node = await spawnNode(baseEnv(db, { REDIS_URL: redisUrl.toString(), BUS_PREFIX: prefix }));
  return {
    node,
    prefix,
    allow: (kind: string) => admin.call("ACL", "SETUSER", user, `&${prefix}${kind}`),
    async stop() {
      await node.stop();
      await db.drop();
      await admin.call("ACL", "DELUSER", user);
    },
  };
}

describe.skipIf(!usingRedis)("a Redis SUBSCRIBE that fails", () => {
  let admin: Redis;
  beforeAll(() => void (admin = new Redis(process.env.REDIS_URL!)));
  afterAll(() => admin.disconnect());

  it("ends the stream with UNAVAILABLE, and the node keeps running and serving", async () => {
    // Every channel kind of ours except `group:*`.
    const { node, prefix, stop } = await nodeWithChannels(admin, ["device:*", "group-joins:*", "presence:*", "conversation:*", "control"]);
    try {
      const alice = await mlsMember(node.url, 1);
      const ws = openWs(node.url, alice.token);
      const inbox = collect(ws, InboxDocument);
      const joins = `${prefix}group-joins:${alice.userId}:${alice.deviceId}`;
      await waitFor(async () => ((await admin.pubsub("NUMSUB", joins)) as [string, number])[1] > 0, "the inbox subscription");

      // Creating a group tells alice's open stream to SUBSCRIBE to the group's channel: Redis refuses it.
      const groupId = await alice.mls.createGroup({ name: "refused" });
      await waitFor(() => inbox.errors.length > 0, "the inbox to end", 30_000);
      expect(code(inbox.errors[0])).toBe("UNAVAILABLE");

      // A new subscription that needs the group channel is refused the same way, at once.
      const events = collect(ws, GroupEventsDocument);
      await waitFor(() => events.errors.length > 0, "groupEvents to be refused", 30_000);
      expect(code(events.errors[0])).toBe("UNAVAILABLE");

      // The process is alive and serves, on the same socket and over HTTP.
      expect(node.child.exitCode).toBeNull();
      const me = await alice.http.request(MeDocument);
      expect(me.me.deviceId).toBe(alice.deviceId);
      expect(groupId).toBeTruthy();
      expect(node.logs.join("\n")).toContain("live subscription failed");
      expect(node.logs.join("\n")).not.toMatch(/unhandled/i);
      await ws.dispose();
    } finally {
      await stop();
    }
  });

  it("refuses a presence stream one of whose channels is refused, and leaves the channels that did subscribe", async () => {
    const { node, prefix, allow, stop } = await nodeWithChannels(admin, ["device:*", "group-joins:*", "conversation:*", "control"]);
    try {
      const [alice, bob, carol] = [await registerDevice(node.url), await registerDevice(node.url), await registerDevice(node.url)];
      // Contacts both ways (each wrote to the other), so alice may follow both.
      for (const [from, to] of [[bob, alice], [alice, bob], [carol, alice], [alice, carol]]) await sendOpaque(from, to.userId, "hi");
      await allow(`presence:${bob.userId}`); // carol's presence channel stays refused
      const ws = openWs(node.url, alice.token, { lazy: false });
      const bobs = `${prefix}presence:${bob.userId}`;
      const numsub = async () => ((await admin.pubsub("NUMSUB", bobs)) as [string, number])[1];
      // Control: bob's channel alone subscribes (and is left when the stream stops).
      const control = collect(ws, PresenceUpdatesDocument, { userIds: [bob.userId] });
      await control.until((xs) => xs.length > 0, 30_000, "bob's presence");
      expect(await numsub()).toBe(1);
      control.stop();
      await waitFor(async () => (await numsub()) === 0, "bob's channel to be left after the control");

      const sub = collect(ws, PresenceUpdatesDocument, { userIds: [bob.userId, carol.userId] });
      await waitFor(() => sub.errors.length > 0, "the presence stream to be refused", 30_000);
      expect(code(sub.errors[0])).toBe("UNAVAILABLE");
      // Bob's channel had subscribed: it is left again (before the fix it listened on, into a feed nobody read).
      await waitFor(async () => (await numsub()) === 0, "bob's channel to be left");
      expect(node.child.exitCode).toBeNull();
      await ws.dispose();
    } finally {
      await stop();
    }
  });
});
