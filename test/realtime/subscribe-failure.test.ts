// A Redis SUBSCRIBE that fails (here: refused by a Redis ACL that lets this node's connection use every channel but
// the group ones, a real NOPERM from a real Redis) must end only the affected stream, with an error the client sees,
// never the process: before the fix, a device creating a group while its inbox was open became an unhandled
// rejection and the node exited.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { GroupEventsDocument, InboxDocument, MeDocument } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { createTestDatabase, usingRedis } from "../helpers/database.ts";
import { mlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { baseEnv, busPrefix, spawnNode } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const code = (err: unknown) => (err as { code?: string }).code;

describe.skipIf(!usingRedis)("a Redis SUBSCRIBE that fails", () => {
  it("ends the stream with UNAVAILABLE, and the node keeps running and serving", async () => {
    const prefix = busPrefix();
    const user = `vgtest-${randomBytes(4).toString("hex")}`;
    const admin = new Redis(process.env.REDIS_URL!);
    // Channel permissions are allow-lists: every channel kind of ours except `group:*`.
    const allowed = ["device:*", "group-joins:*", "presence:*", "conversation:*", "control"].map((c) => `&${prefix}${c}`);
    await admin.call("ACL", "SETUSER", user, "on", ">pw", "~*", "resetchannels", ...allowed, "+@all");
    const redisUrl = new URL(process.env.REDIS_URL!);
    redisUrl.username = user;
    redisUrl.password = "pw";
    const db = await createTestDatabase();
    const node = await spawnNode(baseEnv(db, { REDIS_URL: redisUrl.toString(), BUS_PREFIX: prefix }));
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
      await node.stop();
      await db.drop();
      await admin.call("ACL", "DELUSER", user);
      admin.disconnect();
    }
  });
});
