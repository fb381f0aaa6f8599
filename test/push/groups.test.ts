// Group (MLS) messages wake the members' devices that are away: one push each, none for a connected member or for
// the sending device; the push carries nothing of the group.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupInboxDocument, RegisterPushDocument } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { eventually, sleep } from "../helpers/wait.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { makeCert, pushEnv, startPushService, Subscriber, type PushServiceHandle } from "./fake-browser.ts";

describe("group wake-ups", () => {
  let server: TestServer;
  let service: PushServiceHandle;
  let a: MlsMember, b: MlsMember, c: MlsMember;
  const subs = new Map<string, Subscriber>();
  beforeAll(async () => {
    const cert = makeCert();
    service = await startPushService(cert);
    server = await startServer(pushEnv(cert));
    [a, b, c] = await Promise.all([mlsMember(server.url), mlsMember(server.url), mlsMember(server.url)]);
    for (const [name, m] of [["a", a], ["b", b], ["c", c]] as const) {
      const sub = new Subscriber();
      subs.set(name, sub);
      await m.http.request(RegisterPushDocument, { input: { kind: "WEB_PUSH", endpoint: service.endpoint(name), ...sub.keys() } });
    }
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await service?.close();
  });

  it("an application message wakes the member that is away, not the connected one or the sender", async () => {
    const ws = openWs(server.url, c.token);
    const cInbox = collect(ws, GroupInboxDocument);
    try {
      await cInbox.until(() => true);
      const groupId = await a.mls.createGroup({ name: "secret club", memberUserIds: [b.userId, c.userId] });
      await cInbox.until((xs) => xs.some((x) => x.inbox.__typename === "GroupEvent"), 15_000, "c's welcome");
      await a.mls.send(groupId, text("meet at dawn"));
      const [push] = await eventually(() => {
        expect(service.accepted("b")).toHaveLength(1);
        return service.accepted("b");
      });
      const payload = subs.get("b")!.decrypt(push.body);
      expect(JSON.parse(payload)).toEqual({ kind: "wake" });
      await sleep(500);
      expect(service.received.filter((r) => r.path === "/push/c" || r.path === "/push/a")).toHaveLength(0);
    } finally {
      await ws.dispose();
    }
  });
});
