// group_messages rows go once every member device that may see them acknowledged them (an application message keeps
// its metadata row, without its ciphertext, for history and receipts), or when older than the retention; a device
// that has not acknowledged keeps them. Real ts-mls members against the real store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

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
