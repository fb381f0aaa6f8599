// A group of real ts-mls clients through the delivery service: create, talk, add, remove, race, catch up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptAll, decodeMlsMessage, emptyPskIndex, processMessage } from "ts-mls";
import {
  CommitGroupDocument,
  GroupDocument,
  GroupMembersDocument,
  MessagesDocument,
  MyGroupsDocument,
  PendingGroupEventsDocument,
  SetGroupRoleDocument,
} from "../../src/client/generated/graphql.ts";
import { unb64 } from "../../src/client/base64.ts";
import { mlsSuite } from "../../src/client/mls/key-packages.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { LiveMember, mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

describe("MLS groups of real clients", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember, c: MlsMember, d: MlsMember, e: MlsMember;
  let A: LiveMember, B: LiveMember, C: LiveMember, D: LiveMember;
  let groupId: string;

  beforeAll(async () => {
    server = await startServer();
    [a, b, c, d, e] = await Promise.all([1, 2, 3, 4, 5].map(() => mlsMember(server.url)));
    [A, B, C, D] = [a, b, c, d].map((m) => new LiveMember(m, server.url));
  }, 180_000);
  afterAll(async () => {
    await Promise.all([A, B, C, D].map((m) => m?.close()));
    await server?.close();
  });

  it("creates a group with two members; everyone talks to everyone", async () => {
    groupId = await a.mls.createGroup({ name: "five", memberUserIds: [b.userId, c.userId] });
    await B.waitForUpdate((u) => u.groupId === groupId && !!u.joined);
    await C.waitForUpdate((u) => u.groupId === groupId && !!u.joined);
    const { group } = await a.http.request(GroupDocument, { id: groupId });
    expect(group).toMatchObject({ epoch: 1, name: "five", memberCount: 3 });

    await a.mls.send(groupId, text("from a"));
    await b.mls.send(groupId, text("from b"));
    await c.mls.send(groupId, text("from c"));
    expect((await A.waitForTexts(groupId, 2)).sort()).toEqual(["from b", "from c"]);
    expect((await B.waitForTexts(groupId, 2)).sort()).toEqual(["from a", "from c"]);
    expect((await C.waitForTexts(groupId, 2)).sort()).toEqual(["from a", "from b"]);

    const { myGroups } = await b.http.request(MyGroupsDocument);
    expect(myGroups.map((g) => g.id)).toContain(groupId);
    const { groupMembers } = await b.http.request(GroupMembersDocument, { groupId, first: 2 });
    expect(groupMembers.edges).toHaveLength(2);
    expect(groupMembers.pageInfo.hasNextPage).toBe(true);
    expect(groupMembers.edges[0].node).toMatchObject({ userId: a.userId, role: "ADMIN" });
  });

  it("two members sending at once: every other member gets each message once, in sequence order", async () => {
    // Concurrent sends commit in sequence order but may be published out of it; subscribers must not skip or repeat.
    const busy = await a.mls.createGroup({ name: "busy", memberUserIds: [b.userId, c.userId] });
    await B.waitForUpdate((u) => u.groupId === busy && !!u.joined);
    await C.waitForUpdate((u) => u.groupId === busy && !!u.joined);
    const burst = async (m: MlsMember, tag: string) => {
      for (let i = 0; i < 20; i++) await m.mls.send(busy, text(`${tag}${i}`));
    };
    await Promise.all([burst(a, "a"), burst(b, "b")]);
    const got = await C.waitForTexts(busy, 40, 20_000);
    expect(got.filter((t) => t.startsWith("a"))).toEqual(Array.from({ length: 20 }, (_, i) => `a${i}`));
    expect(got.filter((t) => t.startsWith("b"))).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
    const seqs = C.feed.events.filter((e) => e.groupId === busy).map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
  });

  it("a member added later sees messages only from its joining on", async () => {
    await a.mls.send(groupId, text("before d"));
    await B.waitForTexts(groupId, 3);
    await a.mls.add(groupId, [d.userId]);
    await D.waitForUpdate((u) => u.groupId === groupId && !!u.joined);
    await b.mls.send(groupId, text("after d"));
    expect(await D.waitForTexts(groupId, 1)).toEqual(["after d"]);
    expect(await A.waitForTexts(groupId, 3)).toContain("after d");
    // The server never handed D anything before its welcome.
    const kinds = D.feed.events.filter((ev) => ev.groupId === groupId).map((ev) => ev.kind);
    expect(kinds[0]).toBe("WELCOME");
    expect(D.texts(groupId)).not.toContain("before d");

    // A group's id works as a conversation id for the history too: A sees all five application messages so far,
    // newest first; D only the one from its joining on; a stranger nothing.
    const history = async (who: typeof a) =>
      (await who.http.request(MessagesDocument, { conversationId: groupId })).messages.edges.map((e) => e.node);
    const forA = await history(a);
    expect(forA.map((m) => m.senderUserId)).toEqual([b.userId, a.userId, c.userId, b.userId, a.userId]);
    expect(forA.every((m) => m.conversationId === groupId && m.recipientUserId === null && m.status === "SENT")).toBe(true);
    const forD = await history(d);
    expect(forD).toHaveLength(1);
    expect(forD[0]).toMatchObject({ senderUserId: b.userId, id: forA[0].id });
    const stranger = await registerDevice(server.url);
    const refused = await stranger.http.execute(MessagesDocument, { conversationId: groupId });
    expect(refused.errors?.[0].extensions?.code).toBe("NOT_FOUND");
  });

  it("a removed member cannot decrypt what follows, and the server stops delivering to it", async () => {
    const stateBefore = await c.mls.state(groupId);
    await a.mls.remove(groupId, [c.userId]);
    await C.waitForUpdate((u) => u.groupId === groupId && !!u.removed);
    expect(await c.mls.state(groupId)).toBeNull();
    const seenByC = C.feed.events.length;

    await b.mls.send(groupId, text("after c left"));
    await D.waitForTexts(groupId, 2);
    const { pendingGroupEvents } = await c.http.request(PendingGroupEventsDocument, { groupId });
    expect(pendingGroupEvents).toEqual([]);
    expect(C.feed.events.length).toBe(seenByC);

    // Even given the ciphertext, C's last state cannot read it.
    const appMessages = A.feed.events.filter((ev) => ev.kind === "APPLICATION" && ev.senderUserId === b.userId);
    const last = appMessages[appMessages.length - 1];
    const m = decodeMlsMessage(unb64(last.message!), 0)![0];
    if (m.wireformat !== "mls_private_message") throw new Error("expected a private message");
    await expect(processMessage(m, stateBefore!, emptyPskIndex, acceptAll, await mlsSuite())).rejects.toThrow();

    const { group } = await b.http.request(GroupDocument, { id: groupId });
    expect(group?.memberCount).toBe(3);
    const { group: forC } = await c.http.request(GroupDocument, { id: groupId });
    expect(forC).toBeNull();
  });

  it("of two commits for the same epoch exactly one is accepted; the loser gets STALE_EPOCH with the epoch", async () => {
    await Promise.all([a.mls.sync(groupId), b.mls.sync(groupId)]);
    // Both build a commit on the same epoch (the SDK's own builder, so each keeps its pending state).
    const [ia, ib] = await Promise.all([a.mls.prepareCommit(groupId, { proposals: [] }), b.mls.prepareCommit(groupId, { proposals: [] })]);
    const epochBefore = (await a.http.request(GroupDocument, { id: groupId })).group!.epoch;
    const results = await Promise.allSettled([
      a.http.request(CommitGroupDocument, { input: ia }),
      b.http.request(CommitGroupDocument, { input: ib }),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(GraphQLRequestError);
    expect(lost[0].reason.code).toBe("STALE_EPOCH");
    expect(lost[0].reason.extensions.epoch).toBe(epochBefore + 1);
    expect((await a.http.request(GroupDocument, { id: groupId })).group!.epoch).toBe(epochBefore + 1);
  });

  it("the SDK resolves racing changes: both commits land, one after processing the other, and everyone still talks", async () => {
    await b.http.request(SetGroupRoleDocument, { groupId, userId: b.userId, role: "ADMIN" }).catch((err) => {
      expect(err.code).toBe("FORBIDDEN");
    });
    await a.http.request(SetGroupRoleDocument, { groupId, userId: b.userId, role: "ADMIN" });
    const before = (await a.http.request(GroupDocument, { id: groupId })).group!.epoch;
    await Promise.all([a.mls.sync(groupId), b.mls.sync(groupId), d.mls.sync(groupId)]);
    const [ea, eb] = await Promise.all([a.mls.update(groupId), b.mls.update(groupId)]);
    expect(new Set([ea, eb])).toEqual(new Set([before + 1, before + 2]));
    await d.mls.sync(groupId);
    await a.mls.sync(groupId);
    await b.mls.sync(groupId);
    await d.mls.send(groupId, text("after the race"));
    expect(await A.waitForTexts(groupId, 5)).toContain("after the race");
    expect(await B.waitForTexts(groupId, 4)).toContain("after the race");
  });

  it("an offline member catches up in order: welcome, then every message", async () => {
    await a.mls.sync(groupId);
    await a.mls.add(groupId, [e.userId]);
    for (const s of ["one", "two", "three"]) await a.mls.send(groupId, text(s));
    await b.mls.sync(groupId);
    await b.mls.send(groupId, text("four"));
    const updates = await e.mls.sync(groupId);
    expect(updates[0].joined).toBe(true);
    expect(updates.filter((u) => u.plaintext).map((u) => Buffer.from(u.plaintext!).toString())).toEqual([
      "one",
      "two",
      "three",
      "four",
    ]);
    const seqs = updates.map((u) => u.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    // Acknowledged: nothing is pending any more.
    const { pendingGroupEvents } = await e.http.request(PendingGroupEventsDocument, { groupId });
    expect(pendingGroupEvents).toEqual([]);
  });

  it("a member who leaves gets nothing more; any member then commits the removal of its leaves", async () => {
    await d.mls.sync(groupId);
    await d.mls.leave(groupId);
    // The leave itself is the last event d sees.
    await D.feed.waitFor((evs) => evs.some((ev) => ev.groupId === groupId && ev.kind === "MEMBERS_CHANGED" && ev.senderUserId === d.userId));
    const seenByD = D.feed.events.filter((ev) => ev.groupId === groupId).length;
    // e is a plain member: removing the leaves of someone who already left needs no admin.
    await e.mls.sync(groupId);
    await e.mls.update(groupId, [d.userId]);
    expect([...(await e.mls.members(groupId)).values()].some((id) => id.startsWith(d.userId))).toBe(false);
    await a.mls.sync(groupId);
    await a.mls.send(groupId, text("after d left"));
    expect((await e.mls.sync(groupId)).map((u) => u.plaintext && Buffer.from(u.plaintext).toString())).toContain("after d left");
    const { pendingGroupEvents } = await d.http.request(PendingGroupEventsDocument, { groupId });
    expect(pendingGroupEvents).toEqual([]);
    expect(D.feed.events.filter((ev) => ev.groupId === groupId).length).toBe(seenByD);
    const { group } = await a.http.request(GroupDocument, { id: groupId });
    expect(group?.memberCount).toBe(3);
  });
});
