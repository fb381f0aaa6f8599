// group_messages rows go once every member device that may see them acknowledged them (an application message keeps
// its metadata row, without its ciphertext, for history and receipts), or when older than the retention; a device
// that has not acknowledged keeps them. Real ts-mls members against the real store.
import { defaultCapabilities, encodeMlsMessage, generateKeyPackage } from "ts-mls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupMessageStatusDocument, MessagesDocument, UploadKeyPackagesDocument } from "../../src/client/generated/graphql.ts";
import { b64 } from "../../src/client/base64.ts";
import { credentialFor, mlsSuite } from "../../src/client/mls/key-packages.ts";
import { refusal } from "../helpers/graphql.ts";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { eventually } from "../helpers/wait.ts";

describe("group event retention", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember;
  let groupId: string;
  const rows = () => server.app.prisma.groupMessage.count({ where: { groupId } });

  beforeAll(async () => {
    // The test sweeps by hand: the interval sweeper stays out of the way.
    server = await startServer({ SWEEP_INTERVAL_MS: "3600000" });
    [a, b] = await Promise.all([mlsMember(server.url), mlsMember(server.url)]);
    groupId = await a.mls.createGroup({ name: "retention", memberUserIds: [b.userId] });
  }, 120_000);
  afterAll(() => server?.close());

  it("keeps what a device still needs, deletes what everyone acknowledged, and what outlived the retention", async () => {
    await a.mls.send(groupId, text("one"));
    await a.mls.sync(groupId);
    // The first commit came before b joined and a acknowledged it: it goes. b has acknowledged nothing yet: its
    // welcome, the members-changed event and the message stay.
    expect(await server.app.services.groups.sweep()).toBe(1);
    expect(await rows()).toBe(3);
    const updates = await b.mls.sync(groupId);
    expect(updates.filter((u) => u.plaintext).map((u) => Buffer.from(u.plaintext!).toString())).toEqual(["one"]);
    expect(await server.app.services.groups.sweep()).toBe(3);
    const left = await server.app.prisma.groupMessage.findMany({ where: { groupId } });
    expect(left.map((r) => [r.kind, r.message])).toEqual([["APPLICATION", null]]);
    expect(await server.app.services.groups.sweep()).toBe(0);

    await a.mls.send(groupId, text("two"));
    await a.mls.sync(groupId);
    expect(await server.app.services.groups.sweep()).toBe(0);
    // Nobody fetched it in time: past the retention it goes anyway, with the stripped row of "one".
    const later = new Date(Date.now() + 31 * 24 * 3600 * 1000);
    expect(await server.app.services.groups.sweep(later)).toBe(2);
    expect(await rows()).toBe(0);
    expect(await b.mls.sync(groupId)).toEqual([]);
    await a.mls.send(groupId, text("three"));
    expect((await b.mls.sync(groupId)).map((u) => Buffer.from(u.plaintext ?? []).toString())).toEqual(["three"]);
  });
});

// A delivered group message's metadata row (history, receipts, deletion) lives METADATA_RETENTION_SECONDS, not the
// queue retention; its receipts go with it. Key packages: a claimed one goes after the retention (its commit has
// been checked long since), an unclaimed one past its lifetime at once; the rest and the last-resort one stay.
describe("group metadata and key package retention", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember;
  let groupId: string;
  const DAY_MS = 86_400_000;
  const inDays = (days: number) => new Date(Date.now() + days * DAY_MS);

  beforeAll(async () => {
    server = await startServer({ SWEEP_INTERVAL_MS: "3600000", METADATA_RETENTION_SECONDS: String(24 * 3600) });
    [a, b] = await Promise.all([mlsMember(server.url), mlsMember(server.url)]);
    groupId = await a.mls.createGroup({ name: "metadata", memberUserIds: [b.userId] });
  }, 120_000);
  afterAll(() => server?.close());

  it("drops a delivered message's row and receipts after the metadata retention; an unfetched one waits for the queue's", async () => {
    await a.mls.send(groupId, text("seen"));
    await a.mls.sync(groupId);
    await b.mls.sync(groupId);
    const [seen] = await server.app.prisma.groupMessage.findMany({ where: { groupId, kind: "APPLICATION" } });
    const seenId = `g:${groupId}:${seen.seq}`;
    await eventually(async () => {
      const { groupMessageStatus } = await a.http.request(GroupMessageStatusDocument, { messageId: seenId });
      expect(groupMessageStatus.deliveredTo.map((d) => d.userId)).toEqual([b.userId]);
    });
    await a.mls.send(groupId, text("unfetched"));
    await a.mls.sync(groupId);
    const sweep = (at: Date) => server.app.services.groups.sweep(at);
    const application = async () =>
      (await server.app.prisma.groupMessage.findMany({ where: { groupId, kind: "APPLICATION" }, orderBy: { seq: "asc" } })).map((m) => [m.seq, m.message === null]);
    while ((await sweep(new Date())) > 0);
    expect(await application()).toEqual([[seen.seq, true], [expect.any(BigInt), false]]);

    // Inside the delete-for-everyone window (48 hours) the row stays even though the retention (a day) is over.
    expect(await sweep(inDays(1.5))).toBe(0);
    expect(await sweep(inDays(3))).toBe(1);
    expect((await application()).map(([, stripped]) => stripped)).toEqual([false]);
    expect(await server.app.prisma.groupReceipt.count({ where: { groupId } })).toBe(0);
    expect(await server.app.prisma.groupDelivery.count({ where: { groupId } })).toBe(0);
    expect((await refusal(a.http.request(GroupMessageStatusDocument, { messageId: seenId }))).code).toBe("NOT_FOUND");
    const history = await a.http.request(MessagesDocument, { conversationId: groupId, first: 10 });
    expect(history.messages.edges).toHaveLength(1);
    expect(await sweep(inDays(31))).toBe(1);
    expect(await application()).toEqual([]);
  });

  it("purges claimed key packages after the retention and expired ones at once, never the last-resort one", async () => {
    const packages = (userId: string) =>
      server.app.prisma.keyPackage.findMany({ where: { userId }, select: { claimedAt: true, lastResort: true } });
    const claimed = (await packages(b.userId)).filter((k) => k.claimedAt);
    expect(claimed).toHaveLength(1);
    // A key package that expires in an hour, uploaded by b itself.
    const cs = await mlsSuite();
    const lifetime = { notBefore: 0n, notAfter: BigInt(Math.floor(Date.now() / 1000) + 3600) };
    const shortLived = await generateKeyPackage(credentialFor(b.address), defaultCapabilities(), lifetime, [], cs);
    const encoded = encodeMlsMessage({ keyPackage: shortLived.publicPackage, wireformat: "mls_key_package", version: "mls10" });
    await b.http.request(UploadKeyPackagesDocument, { keyPackages: [b64(encoded)] });
    const before = (await packages(b.userId)).length;
    const purge = (at: Date) => server.app.services.keyPackages.purge(at, 100);

    expect(await purge(new Date())).toBe(0);
    expect(await purge(inDays(0.5))).toBe(1); // the expired one
    expect(await purge(inDays(2))).toBe(1); // b's claimed one
    const left = await packages(b.userId);
    expect(left).toHaveLength(before - 2);
    expect(left.filter((k) => k.claimedAt)).toEqual([]);
    expect(left.filter((k) => k.lastResort)).toHaveLength(1);
    // What is left still serves: a new group claims one of b's packages and b joins it.
    const next = await a.mls.createGroup({ name: "after purge", memberUserIds: [b.userId] });
    await a.mls.send(next, text("hello"));
    expect((await b.mls.sync(next)).map((u) => Buffer.from(u.plaintext ?? []).toString())).toContain("hello");
  });
});
