// Consent through the SDK end to end (real libsignal sessions, real account directories): a stranger's message is
// raised apart as a request and reveals no presence until accepted; a blocked user's sends resolve as usual and
// reach nothing; a report goes in; users named by username or id. Device lists for sessions still work (ids only).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { PresenceDocument } from "../../src/client/generated/graphql.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, texts, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("consent through the SDK", () => {
  let server: TestServer;
  const clients: VignetteClient[] = [];
  const rec = new Map<VignetteClient, Recorded>();
  let bob: VignetteClient, eve: VignetteClient, mallory: VignetteClient, alice: VignetteClient;
  const r = (c: VignetteClient) => rec.get(c)!;
  const client = async (name: string) => {
    const c = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name) });
    clients.push(c);
    rec.set(c, record(c));
    await c.start();
    return c;
  };
  const presence = async (viewer: VignetteClient, of: VignetteClient) =>
    (await viewer.http.request(PresenceDocument, { userIds: [of.userId] })).presence;

  beforeAll(async () => {
    server = await startServer();
    [bob, eve, mallory, alice] = [await client("bob"), await client("eve"), await client("mallory"), await client("alice")];
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  it("a stranger's message is a request: shown apart, no presence until Bob accepts", async () => {
    await eve.send(bob.username!, "hi, we have not met");
    await waitFor(() => r(bob).events.messageRequest?.some((e) => e.userId === eve.userId), "the request event");
    expect(texts(r(bob))).toContain("hi, we have not met"); // Bob can read it; Eve learns nothing of Bob
    expect((await bob.requests()).map((q) => q.userId)).toEqual([eve.userId]);
    expect(await presence(eve, bob)).toEqual([]);
    // Eve's SDK built sessions from Bob's device ids alone: names and creation times are hidden from her.
    expect(await eve.devices(bob.userId)).toEqual([expect.objectContaining({ deviceId: 1, name: null, createdAt: null })]);

    await bob.acceptRequest(eve.username!);
    expect(await bob.requests()).toEqual([]);
    expect(await presence(eve, bob)).toEqual([{ userId: bob.userId, online: true, lastSeen: null }]);
    await eve.send(bob.userId, "thanks");
    await waitFor(() => texts(r(bob)).includes("thanks"), "the second message");
    expect(r(bob).events.messageRequest).toHaveLength(1); // an accepted sender is no request any more
  });

  it("a blocked user's sends resolve as usual and reach nothing; unblocking lets later ones through", async () => {
    await mallory.send(bob.username!, "first");
    await waitFor(() => texts(r(bob)).includes("first"), "mallory's first message");
    await bob.block(mallory.username!);
    const sent = await mallory.send(bob.userId, "blocked words");
    expect(sent.messageId).toMatch(/^[0-9a-f-]{36}$/);
    await alice.send(bob.userId, "a fence after it");
    await waitFor(() => texts(r(bob)).includes("a fence after it"), "the fence");
    expect(texts(r(bob))).not.toContain("blocked words");
    expect(await server.app.prisma.inboxItem.count({ where: { userId: bob.userId, messageId: sent.messageId } })).toBe(0);

    const first = r(bob).messages.find((m) => m.body.kind === "text" && m.body.text === "first")!;
    await bob.report(first.messageId, "harassment", "first");
    const rows = await server.app.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM consent_reports WHERE message_id = ${first.messageId}::uuid AND excerpt = 'first'`;
    expect(rows[0].n).toBe(1);

    await bob.unblock(mallory.userId);
    await mallory.send(bob.userId, "after unblock");
    await waitFor(() => texts(r(bob)).includes("after unblock"), "the message after unblocking");
  });

  it("a blocked user's message queued before the block is dropped on receipt, also after a restart; unblocking lets later ones through", async () => {
    // Carol's device is offline while Mallory writes: the copy is queued before the block and received after it.
    const dir = await tempDir();
    let carol = await VignetteClient.register({ server: server.url, dir, username: uniqueUsername("carol") });
    await mallory.send(carol.username!, "queued before the block");
    await carol.block(mallory.userId);
    await carol.close();
    carol = await VignetteClient.open(dir); // the block is kept with the account, not only in memory
    clients.push(carol);
    rec.set(carol, record(carol));
    await carol.start();
    await alice.send(carol.userId, "a fence after it");
    await waitFor(() => texts(r(carol)).includes("a fence after it"), "the fence");
    // Before: the queued copy was shown as a message (and a message request) although its sender was blocked.
    expect(texts(r(carol))).not.toContain("queued before the block");
    expect(r(carol).events.messageRequest?.map((e) => e.userId) ?? []).not.toContain(mallory.userId);
    expect((await carol.store.conversationWith(mallory.userId)) ?? null).toBeNull();
    // Acknowledged all the same: nothing of Mallory's is left queued for Carol's device.
    await waitFor(async () => (await server.app.prisma.inboxItem.count({ where: { userId: carol.userId, kind: "envelope" } })) === 0, "acks");

    await carol.unblock(mallory.userId);
    await mallory.send(carol.userId, "after unblock");
    await waitFor(() => texts(r(carol)).includes("after unblock"), "the message after unblocking");
  });
});
