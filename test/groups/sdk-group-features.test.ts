// Group features through the SDK: delivered and read receipts to the sender (read ones only with the reader's
// setting on), delete for everyone by the sender within the window, per-message, per-group and per-chat timers, and
// the last admin rule (no self-demotion; leaving hands the group to the longest-standing member).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { SetReadReceiptsDocument } from "../../src/client/generated/graphql.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("group receipts, deletion, timers, admins", () => {
  let server: TestServer;
  const clients: VignetteClient[] = [];
  const rec = new Map<VignetteClient, Recorded>();
  let alice: VignetteClient, bob: VignetteClient, carol: VignetteClient;
  let groupId: string;
  const r = (c: VignetteClient) => rec.get(c)!;
  const got = (c: VignetteClient, text: string) =>
    (r(c).events.groupMessage ?? []).find((m) => m.groupId === groupId && m.body.kind === "text" && m.body.text === text);

  beforeAll(async () => {
    server = await startServer({ DELETE_FOR_EVERYONE_WINDOW_SECONDS: "3" });
    for (const name of ["alice", "bob", "carol"]) {
      const c = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name) });
      clients.push(c);
      rec.set(c, record(c));
      await c.start();
    }
    [alice, bob, carol] = clients;
    await carol.http.request(SetReadReceiptsDocument, { enabled: false });
    groupId = (await alice.groups.create({ name: "features", members: [bob.username!, carol.username!] })).id;
    for (const c of [bob, carol]) await waitFor(() => (r(c).events.groupChanged ?? []).some((e) => e.kind === "joined"), "joined");
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  it("the sender gets delivered receipts from both members and a read receipt only from the one with receipts on", async () => {
    const { messageId } = await alice.groups.send(groupId, "did you get this?");
    const m = await waitFor(() => got(bob, "did you get this?"), "bob has it");
    await waitFor(() => got(carol, "did you get this?"), "carol has it");
    const receipts = () => (r(alice).events.receipt ?? []).filter((x) => x.messageId === messageId);
    await waitFor(() => receipts().filter((x) => x.kind === "DELIVERED").length === 2, "two delivered receipts");
    expect(await bob.markRead([m.messageId])).toBe(1);
    expect(await carol.markRead([m.messageId])).toBe(0);
    await waitFor(() => receipts().some((x) => x.kind === "READ"), "bob's read receipt");
    expect(receipts().filter((x) => x.kind === "READ").map((x) => x.userId)).toEqual([bob.userId]);
    expect(receipts()[0]).toMatchObject({ conversationId: groupId });
    const status = await alice.groups.status(messageId);
    expect(status.deliveredTo.map((d) => d.userId).sort()).toEqual([bob.userId, carol.userId].sort());
    expect(status.readBy.map((d) => d.userId)).toEqual([bob.userId]);
    expect((await alice.store.get(messageId))?.readAt).toBeTruthy();
  });

  it("the sender deletes for everyone within the window; others may not; past the window nobody may", async () => {
    const { messageId } = await alice.groups.send(groupId, "oops");
    await waitFor(() => got(bob, "oops"), "bob has it");
    const refused = await bob.deleteMessage(messageId, true).catch((e) => e);
    expect(refused.code).toBe("FORBIDDEN");
    expect(await alice.deleteMessage(messageId, true)).toBe(true);
    for (const c of [bob, carol]) {
      await waitFor(() => (r(c).events.deleted ?? []).some((d) => d.messageId === messageId), "the deletion arrives");
      expect((await c.messages(groupId)).map((x) => x.messageId)).not.toContain(messageId);
    }
    expect(await alice.store.get(messageId)).toBeUndefined();

    const late = await alice.groups.send(groupId, "too late to take back");
    await new Promise((res) => setTimeout(res, 3_500));
    expect((await alice.deleteMessage(late.messageId, true).catch((e) => e)).code).toBe("FORBIDDEN");
  });

  it("timers: per message, the group's default (set by one, applied by all), and a 1:1 chat's default", async () => {
    await alice.groups.send(groupId, "self-destructs", { expiresInSeconds: 1 });
    const m = await waitFor(() => got(bob, "self-destructs"), "bob has it");
    expect(Date.parse(m.expiresAt!) - Date.parse(m.serverTimestamp)).toBe(1000);
    await waitFor(() => (r(bob).events.expired ?? []).some((e) => e.messageId === m.messageId), "it expires on bob's device", 10_000);
    expect(await bob.store.get(m.messageId)).toBeUndefined();

    await alice.setDefaultTimer(groupId, 3600);
    await waitFor(() => (r(bob).events.groupChanged ?? []).some((e) => e.kind === "infoChanged"), "bob learns the new setting");
    expect((await bob.groups.get(groupId))?.expiresInSeconds).toBe(3600);
    await bob.groups.send(groupId, "under the group timer");
    const timed = await waitFor(() => got(carol, "under the group timer"), "carol has it");
    expect(Date.parse(timed.expiresAt!) - Date.parse(timed.serverTimestamp)).toBe(3_600_000);

    await alice.setDefaultTimer(carol.username!, 60);
    await alice.send(carol.username!, "a timed direct message");
    const direct = await waitFor(() => r(carol).messages.find((x) => x.body.kind === "text" && x.body.text === "a timed direct message"), "carol's dm");
    expect(Date.parse(direct.expiresAt!) - Date.parse(direct.serverTimestamp)).toBe(60_000);
  });

  it("the last admin cannot step down; leaving makes the longest-standing member admin", async () => {
    expect((await alice.groups.setRole(groupId, alice.username!, "member").catch((e) => e)).code).toBe("CONFLICT");
    await alice.groups.leave(groupId);
    const members = await bob.groups.members(groupId);
    expect(members.filter((m) => m.role === "admin")).toHaveLength(1);
    expect(members.map((m) => m.userId)).not.toContain(alice.userId);
    // bob and carol joined in the same commit: the tie goes to the smaller user id.
    expect(members.find((m) => m.role === "admin")!.userId).toBe([bob.userId, carol.userId].sort()[0]);
    // A remaining member's SDK removes alice's leaf with its next commit.
    await waitFor(async () => ![...(await bob.groups.mls.members(groupId)).values()].some((k) => k.startsWith(alice.userId)), "alice's leaf removed", 20_000);
  });
});
