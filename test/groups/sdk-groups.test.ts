// Groups through the SDK, every device of every member: three users with two devices each create a group, talk and
// reply; a third device linked later joins and reads only what follows; a deactivated device is cut off, its leaf
// removed by the next commit, its posts refused. Real ts-mls, libsignal, graphql-ws and account directories.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { SendGroupMessageDocument } from "../../src/client/generated/graphql.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("client.groups: every device of every member", () => {
  let server: TestServer;
  const clients: VignetteClient[] = [];
  const rec = new Map<VignetteClient, Recorded>();
  let alice: VignetteClient, alice2: VignetteClient, bob: VignetteClient, bob2: VignetteClient, carol: VignetteClient, carol2: VignetteClient;
  let groupId: string;

  const started = async (c: VignetteClient) => {
    clients.push(c);
    rec.set(c, record(c));
    await c.start();
    return c;
  };
  const r = (c: VignetteClient) => rec.get(c)!;
  const groupTexts = (c: VignetteClient, g = groupId) =>
    (r(c).events.groupMessage ?? []).filter((m) => m.groupId === g).map((m) => (m.body.kind === "text" ? m.body.text : "?"));
  const joined = (c: VignetteClient, g = groupId) => (r(c).events.groupChanged ?? []).some((e) => e.groupId === g && e.kind === "joined");
  const pair = async (name: string) => {
    const first = await started(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name) }));
    const { token } = await first.createLinkToken();
    const second = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token }));
    return [first, second] as const;
  };

  beforeAll(async () => {
    server = await startServer();
    [alice, alice2] = await pair("alice");
    [bob, bob2] = await pair("bob");
    [carol, carol2] = await pair("carol");
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  it("creates a group by usernames; all six devices are in it, every message reaches every other device, replies too", async () => {
    const g = await alice.groups.create({ name: "family", description: "the six of us", members: [bob.username!, carol.userId] });
    groupId = g.id;
    expect(g).toMatchObject({ name: "family", description: "the six of us", memberCount: 3 });
    for (const c of [alice2, bob, bob2, carol, carol2]) await waitFor(() => joined(c), `${c.username}.${c.deviceId} joins`);
    expect((await alice.groups.mls.members(groupId)).size).toBe(6);

    await alice.groups.send(groupId, "hello family");
    for (const c of [alice2, bob, bob2, carol, carol2]) await waitFor(() => groupTexts(c).includes("hello family"), `${c.username}.${c.deviceId} reads`);
    const sync = r(alice2).events.groupMessage!.find((m) => m.body.kind === "text");
    expect(sync).toMatchObject({ isSync: true, direction: "out", from: { userId: alice.userId, deviceId: 1 }, groupId });

    // A reply sent from inside the handler, as an app would.
    bob2.on("groupMessage", async (m) => {
      if (m.body.kind === "text" && m.body.text === "hello family") await bob2.groups.send(m.groupId, { kind: "text", text: "hi from bob's laptop" });
    });
    await bob.groups.send(groupId, "hi from bob");
    await carol.groups.send(groupId, "hi from carol");
    for (const c of [alice, alice2, carol2]) {
      await waitFor(() => ["hi from bob", "hi from carol"].every((t) => groupTexts(c).includes(t)), `${c.username}.${c.deviceId} reads replies`);
    }
    await waitFor(() => groupTexts(bob2).includes("hi from carol"), "bob2 reads carol");

    const history = await carol2.messages(groupId);
    expect(history.map((m) => (m.body.kind === "text" ? m.body.text : "?"))).toEqual(expect.arrayContaining(["hello family", "hi from bob", "hi from carol"]));
    expect((await alice.messages(groupId)).find((m) => m.direction === "out")).toMatchObject({ groupId, body: { text: "hello family" } });

    expect((await bob.groups.list()).map((x) => x.id)).toContain(groupId);
    const members = await bob.groups.members(groupId);
    expect(members[0]).toMatchObject({ userId: alice.userId, role: "admin" });
    expect(members.slice(1).map((m) => [m.userId, m.role]).sort()).toEqual(
      [
        [bob.userId, "member"],
        [carol.userId, "member"],
      ].sort(),
    );
  });

  it("alice links a third device: it joins her groups and reads the next message, not earlier ones", async () => {
    const { token } = await alice.createLinkToken();
    const alice3 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token }));
    await waitFor(() => joined(alice3), "alice3 joins", 30_000).catch((e) => {
      throw new Error(`${e.message}; errors: ${[alice, alice2, alice3].map((c) => (r(c).events.error ?? []).map(String).join(" | ")).join(" || ")}`);
    });
    await carol.groups.send(groupId, "after alice3");
    await waitFor(() => groupTexts(alice3).includes("after alice3"), "alice3 reads the next message");
    expect(groupTexts(alice3)).toEqual(["after alice3"]);
    expect((await alice3.messages(groupId)).map((m) => m.messageId)).toHaveLength(1);
    expect((await alice3.groups.list()).map((g) => g.id)).toContain(groupId);
  });

  it("bob deactivates his laptop: it gets nothing more, its leaf goes with the next commit, its posts are refused", async () => {
    await waitFor(() => groupTexts(bob2).includes("after alice3"), "bob2 is up to date");
    const before = groupTexts(bob2).length;
    const laptopHttp = bob2.http;
    await bob.deactivateDevice(bob2.deviceId);
    // Some member's SDK commits the removal when it learns of the device-list change.
    await waitFor(async () => ![...(await alice.groups.mls.members(groupId)).values()].includes(`${bob.userId}.${bob2.deviceId}`), "bob2's leaf removed", 30_000);
    await alice.groups.send(groupId, "without the laptop");
    await waitFor(() => groupTexts(bob).includes("without the laptop"), "bob's phone reads it");
    expect(groupTexts(bob2)).toHaveLength(before);
    const refused = await laptopHttp.request(SendGroupMessageDocument, { groupId, message: Buffer.from("x").toString("base64") }).then(
      () => null,
      (e) => e,
    );
    expect(refused?.code).toBe("UNAUTHENTICATED");
  });
});
