// Batched group acknowledgements (src/groups/acks.ts): the cursor moves of the ackEnvelopes calls that arrive
// together are one statement with their receipts; the sender's device gets one DELIVERED receipt per reader and
// batch listing the messages (not one per message), each member is recorded once per message, and overlapping
// concurrent acknowledgements lose and double nothing, also between two devices of one member. Delivered receipts
// are stored as one range per cursor move (group_deliveries); the status query reads a message's out of them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AckEnvelopesDocument,
  GroupMessageStatusDocument,
  InboxDocument,
  PendingGroupEventsDocument,
  type InboxSubscription,
} from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { groupEventId, parseGroupEventId } from "../../src/groups/events.ts";
import { linkNewDevice, type TestDevice } from "../helpers/accounts.ts";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { sleep } from "../helpers/wait.ts";

type Ev = InboxSubscription["inbox"];
type Receipt = Extract<Ev, { __typename: "ReceiptEvent" }>;
// The sender's inbox replays receipts of earlier tests it never acknowledged: each test reads its own group's.
const receiptsOf = (groupId: string) => (xs: { inbox: Ev }[]) =>
  xs.map((x) => x.inbox).filter((e): e is Receipt => e.__typename === "ReceiptEvent" && e.conversationId === groupId);

describe("batched group acknowledgements", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember, c: MlsMember;

  beforeAll(async () => {
    server = await startServer();
    [a, b, c] = await Promise.all([mlsMember(server.url, 3), mlsMember(server.url, 3), mlsMember(server.url, 3)]);
  }, 180_000);
  afterAll(() => server?.close());

  /** The ids of the application messages `m` has not acknowledged in the group, in order. */
  async function pendingIds(m: MlsMember, groupId: string): Promise<string[]> {
    const { pendingGroupEvents } = await m.http.request(PendingGroupEventsDocument, { groupId });
    return pendingGroupEvents.filter((e) => e.kind === "APPLICATION").map((e) => e.id);
  }

  /** A group of a, b and c with `n` application messages from a; their ids. */
  async function groupWith(n: number): Promise<{ groupId: string; sent: string[] }> {
    const groupId = await a.mls.createGroup({ name: "acks", memberUserIds: [b.userId, c.userId] });
    const sent: string[] = [];
    for (let i = 0; i < n; i++) sent.push(await a.mls.send(groupId, text(`m${i}`)));
    return { groupId, sent };
  }

  it("two members acknowledging five messages at once: the sender gets one receipt from each, listing the five", async () => {
    const { groupId, sent } = await groupWith(5);
    const receipts = receiptsOf(groupId);
    const ws = openWs(server.url, a.token);
    const inbox = collect(ws, InboxDocument);
    try {
      const [ib, ic] = await Promise.all([pendingIds(b, groupId), pendingIds(c, groupId)]);
      expect(ib).toEqual(sent);
      // Sent together: they share a batch (or two; the answer is the same either way).
      const [rb, rc] = await Promise.all([
        b.http.request(AckEnvelopesDocument, { ids: ib }),
        c.http.request(AckEnvelopesDocument, { ids: ic }),
      ]);
      expect([rb.ackEnvelopes, rc.ackEnvelopes]).toEqual([5, 5]);
      await inbox.until((xs) => receipts(xs).length >= 2, 15_000, "two receipts");
      await sleep(300); // nothing more may come
      const got = receipts(inbox.items);
      expect(got).toHaveLength(2);
      expect(new Set(got.map((r) => r.userId))).toEqual(new Set([b.userId, c.userId]));
      for (const r of got) {
        expect(r.kind).toBe("DELIVERED");
        expect(r.conversationId).toBe(groupId);
        expect(r.messageIds).toEqual(sent);
        expect(r.messageId).toBe(sent[0]);
      }
      for (const id of sent) {
        const { groupMessageStatus } = await a.http.request(GroupMessageStatusDocument, { messageId: id });
        expect(groupMessageStatus.deliveredTo.map((d) => d.userId).sort()).toEqual([b.userId, c.userId].sort());
      }
      expect(await pendingIds(b, groupId)).toEqual([]);

      // Acknowledging again moves nothing and tells the sender nothing.
      expect((await b.http.request(AckEnvelopesDocument, { ids: ib })).ackEnvelopes).toBe(5);
      await sleep(300);
      expect(receipts(inbox.items)).toHaveLength(2);
    } finally {
      inbox.stop();
      await ws.dispose();
    }
  });

  it("ids of a group the device is not in count for nothing and move nothing, beside valid ones in the same call", async () => {
    const { groupId, sent } = await groupWith(2);
    const outsider = await mlsMember(server.url, 0);
    const theirs = await a.mls.createGroup({ name: "not c's", memberUserIds: [b.userId] });
    const other = await a.mls.send(theirs, text("b only"));
    const ids = await pendingIds(c, groupId);
    expect((await c.http.request(AckEnvelopesDocument, { ids: [...ids, other] })).ackEnvelopes).toBe(2);
    expect((await outsider.http.request(AckEnvelopesDocument, { ids: sent })).ackEnvelopes).toBe(0);
    // b's cursor in `theirs` is where it was: c's acknowledgement of its id moved nothing of b's.
    expect(await pendingIds(b, theirs)).toEqual([other]);
    const { groupMessageStatus } = await a.http.request(GroupMessageStatusDocument, { messageId: other });
    expect(groupMessageStatus.deliveredTo).toEqual([]);
  });

  it("a cursor moved past the group's last message claims nothing of what comes after", async () => {
    const { groupId, sent } = await groupWith(1);
    const ahead = groupEventId(groupId, parseGroupEventId(sent[0])!.seq + 1000n);
    expect((await c.http.request(AckEnvelopesDocument, { ids: [ahead] })).ackEnvelopes).toBe(1);
    const later = await a.mls.send(groupId, text("after the jump"));
    const status = async (id: string) =>
      (await a.http.request(GroupMessageStatusDocument, { messageId: id })).groupMessageStatus.deliveredTo.map((d) => d.userId);
    expect(await status(sent[0])).toEqual([c.userId]);
    expect(await status(later)).toEqual([]);
  });

  it("many overlapping acknowledgements at once: every message is delivered to each member exactly once", async () => {
    const { groupId, sent } = await groupWith(12);
    const receipts = receiptsOf(groupId);
    const ws = openWs(server.url, a.token);
    const inbox = collect(ws, InboxDocument);
    try {
      // Each member acknowledges growing prefixes, out of order, all in flight together.
      const calls = [b, c].flatMap((m) =>
        [7, 2, 12, 5, 9, 1, 12, 3].map((k) => m.http.request(AckEnvelopesDocument, { ids: sent.slice(0, k) })),
      );
      const answers = await Promise.all(calls);
      expect(answers.map((x) => x.ackEnvelopes)).toEqual([b, c].flatMap(() => [7, 2, 12, 5, 9, 1, 12, 3]));
      const listed = (userId: string) => receipts(inbox.items).filter((r) => r.userId === userId).flatMap((r) => r.messageIds);
      await inbox.until(() => listed(b.userId).length >= 12 && listed(c.userId).length >= 12, 15_000, "12 from each");
      await sleep(300);
      for (const m of [b, c]) expect([...listed(m.userId)].sort()).toEqual([...sent].sort());
      expect(await pendingIds(c, groupId)).toEqual([]);
    } finally {
      inbox.stop();
      await ws.dispose();
    }
  });

  /** A second device of `m` in the group from its start, as a commit adding it at epoch 0 would leave its cursor. */
  async function secondDevice(m: MlsMember, groupId: string): Promise<TestDevice> {
    const d = await linkNewDevice(server.url, m, 0);
    await server.app.prisma.groupDevice.create({
      data: { groupId, userId: d.userId, deviceId: d.deviceId, joinedEpoch: 0, fromSeq: 1n, ackedSeq: 0n },
    });
    return d;
  }

  // Last: b's second device has no key package, so no group with b can be created after it.
  it("two devices of one member acknowledging overlapping prefixes at once: the sender hears of each message once", async () => {
    const { groupId, sent } = await groupWith(10);
    const b2 = await secondDevice(b, groupId);
    const receipts = receiptsOf(groupId);
    const ws = openWs(server.url, a.token);
    const inbox = collect(ws, InboxDocument);
    try {
      // Rounds of calls from both devices in flight together: they fall into different batches, run side by side.
      for (const round of [[3, 1, 6, 2], [8, 5, 10, 7], [10, 9, 4, 10]]) {
        await Promise.all(
          [b, b2].flatMap((d, i) => (i ? [...round].reverse() : round).map((k) => d.http.request(AckEnvelopesDocument, { ids: sent.slice(0, k) }))),
        );
      }
      const listed = () => receipts(inbox.items).filter((r) => r.userId === b.userId).flatMap((r) => r.messageIds);
      await inbox.until(() => listed().length >= 10, 15_000, "ten from b");
      await sleep(300);
      expect([...listed()].sort()).toEqual([...sent].sort());
      for (const id of sent) {
        const { groupMessageStatus } = await a.http.request(GroupMessageStatusDocument, { messageId: id });
        expect(groupMessageStatus.deliveredTo.map((d) => d.userId)).toEqual([b.userId]);
      }
      // Each device's ranges are its cursor moves: back to back from where it started to the last message.
      const last = parseGroupEventId(sent[sent.length - 1])!.seq;
      for (const d of [b, b2]) {
        const ranges = await server.app.prisma.groupDelivery.findMany({
          where: { groupId, userId: d.userId, deviceId: d.deviceId },
          orderBy: { throughSeq: "asc" },
        });
        expect(ranges.length).toBeGreaterThan(0);
        for (let i = 1; i < ranges.length; i++) expect(ranges[i].afterSeq).toBe(ranges[i - 1].throughSeq);
        expect(ranges[ranges.length - 1].throughSeq).toBe(last);
      }
    } finally {
      inbox.stop();
      await ws.dispose();
    }
  });
});
