// Delivered/read status and receipts, the read-receipt setting, conversation and message connections, deletion for
// me and for everyone, and self-destruct with the sweeper.
import { describe, expect, it } from "vitest";
import {
  AccountSettingsDocument,
  AckEnvelopesDocument,
  ConversationsDocument,
  DeleteMessageDocument,
  InboxDocument,
  MarkReadDocument,
  MessagesDocument,
  PollInboxDocument,
  SetReadReceiptsDocument,
  type PollInboxQuery,
} from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { accept, sendOpaque } from "../helpers/messaging.ts";
import { startServer } from "../helpers/server.ts";
import { useServer } from "../helpers/fixture.ts";
import { eventually, sleep } from "../helpers/wait.ts";

type Polled = PollInboxQuery["inbox"][number];
const of = <N extends Polled["__typename"]>(xs: Polled[], n: N) =>
  xs.filter((x): x is Extract<Polled, { __typename: N }> => x.__typename === n);

async function poll(d: TestDevice) {
  return (await d.http.request(PollInboxDocument, { first: 500 })).inbox;
}
async function ackAll(d: TestDevice) {
  const ids = (await poll(d)).flatMap((e) => ("id" in e ? [e.id] : []));
  if (ids.length) await d.http.request(AckEnvelopesDocument, { ids });
}
async function conversationId(d: TestDevice) {
  return (await d.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;
}
async function history(d: TestDevice, conversation: string) {
  return (await d.http.request(MessagesDocument, { conversationId: conversation, first: 100 })).messages.edges.map((e) => e.node);
}

describe("status, receipts, deletion and self-destruct", () => {
  const server = useServer({ DELETE_FOR_EVERYONE_WINDOW_SECONDS: "3", SWEEP_INTERVAL_MS: "200" });

  it("goes sent -> delivered -> read, with receipts to every device of the sender (live and queued)", async () => {
    const alice = await registerDevice(server.url, { oneTimeKeys: 30 });
    const alice2 = await linkNewDevice(server.url, alice, 30);
    const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
    await accept(bob, alice); // receipts go only to senders the recipient accepted (test/consent/)
    const ws = openWs(server.url, alice.token);
    try {
      const live = collect(ws, InboxDocument);
      const { messageId } = await sendOpaque(alice, bob.userId, "status?");
      const conv = await conversationId(alice);
      expect((await history(alice, conv))[0]).toMatchObject({ id: messageId, status: "SENT", deliveredAt: null });

      // alice2's sync copy being acknowledged is not a delivery.
      await ackAll(alice2);
      expect((await history(alice, conv))[0].status).toBe("SENT");

      await ackAll(bob);
      expect((await history(alice, conv))[0].status).toBe("DELIVERED");
      const receipts = await live.until((xs) => xs.some((x) => x.inbox.__typename === "ReceiptEvent"));
      expect(receipts.find((x) => x.inbox.__typename === "ReceiptEvent")!.inbox).toMatchObject({
        messageId,
        conversationId: conv,
        userId: bob.userId,
        kind: "DELIVERED",
      });

      expect((await bob.http.request(MarkReadDocument, { messageIds: [messageId] })).markRead).toBe(1);
      expect((await bob.http.request(MarkReadDocument, { messageIds: [messageId] })).markRead).toBe(0);
      // The sender cannot mark its own message read.
      expect((await alice.http.request(MarkReadDocument, { messageIds: [messageId] })).markRead).toBe(0);
      const [m] = await history(bob, conv);
      expect(m).toMatchObject({ status: "READ", senderUserId: alice.userId, recipientUserId: bob.userId, messageType: "TEXT" });
      await live.until((xs) => xs.some((x) => x.inbox.__typename === "ReceiptEvent" && x.inbox.kind === "READ"));
      const queued = of(await poll(alice2), "ReceiptEvent").map((r) => r.kind);
      expect(queued).toEqual(["DELIVERED", "READ"]);
      live.stop();
    } finally {
      await ws.dispose();
    }
  });

  it("one markRead call queues one READ receipt per sender device, listing that sender's messages in order", async () => {
    const alice = await registerDevice(server.url, { oneTimeKeys: 30 });
    const alice2 = await linkNewDevice(server.url, alice, 30);
    const carol = await registerDevice(server.url, { oneTimeKeys: 30 });
    const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
    // Read receipts go only to senders bob accepted (test/consent/).
    await accept(bob, alice);
    await accept(bob, carol);
    const fromAlice = [];
    for (let i = 0; i < 3; i++) fromAlice.push((await sendOpaque(alice, bob.userId, `a${i}`)).messageId);
    const fromCarol = [];
    for (let i = 0; i < 2; i++) fromCarol.push((await sendOpaque(carol, bob.userId, `c${i}`)).messageId);
    await ackAll(bob);
    for (const d of [alice, alice2, carol]) await ackAll(d); // the sync copies and DELIVERED receipts
    const ws = openWs(server.url, alice.token);
    try {
      const live = collect(ws, InboxDocument);
      expect(await poll(alice)).toEqual([]);
      // Out of order, with a repeat and one id bob may not mark (alice's own message to carol is not his).
      const stranger = (await sendOpaque(alice, carol.userId, "not bob's")).messageId;
      const ids = [fromCarol[1], ...fromAlice.toReversed(), fromCarol[0], fromAlice[0], stranger];
      expect((await bob.http.request(MarkReadDocument, { messageIds: ids })).markRead).toBe(5);
      for (const [device, sender, messageIds] of [
        [alice, alice, fromAlice],
        [alice2, alice, fromAlice],
        [carol, carol, fromCarol],
      ] as const) {
        const reads = of(await poll(device), "ReceiptEvent").filter((r) => r.kind === "READ");
        expect(reads, `${sender === alice ? "alice" : "carol"}'s device ${device.deviceId}`).toHaveLength(1);
        expect(reads[0]).toMatchObject({ userId: bob.userId, messageId: messageIds[0], messageIds });
      }
      const got = await live.until((xs) => xs.some((x) => x.inbox.__typename === "ReceiptEvent"));
      const liveReads = got.filter((x) => x.inbox.__typename === "ReceiptEvent").map((x) => x.inbox);
      expect(liveReads).toHaveLength(1);
      expect(liveReads[0]).toMatchObject({ kind: "READ", messageIds: fromAlice });
      live.stop();
    } finally {
      await ws.dispose();
    }
  });

  it("with read receipts off, reads are neither stored nor sent", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    await accept(bob, alice);
    expect((await bob.http.request(AccountSettingsDocument)).accountSettings.readReceipts).toBe(true);
    expect((await bob.http.request(SetReadReceiptsDocument, { enabled: false })).setReadReceipts).toBe(false);
    expect((await bob.http.request(AccountSettingsDocument)).accountSettings.readReceipts).toBe(false);
    const { messageId } = await sendOpaque(alice, bob.userId, "private reader");
    await ackAll(bob);
    expect((await bob.http.request(MarkReadDocument, { messageIds: [messageId] })).markRead).toBe(0);
    const conv = await conversationId(alice);
    expect((await history(alice, conv))[0]).toMatchObject({ status: "DELIVERED", readAt: null });
    expect(of(await poll(alice), "ReceiptEvent").map((r) => r.kind)).toEqual(["DELIVERED"]);
  });

  it("lists conversations and messages as connections with cursors", async () => {
    const alice = await registerDevice(server.url);
    const peers = await Promise.all([1, 2, 3].map(() => registerDevice(server.url)));
    for (const p of peers) await sendOpaque(alice, p.userId, "hey");
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push((await sendOpaque(alice, peers[2].userId, `n${i}`)).messageId);

    const page1 = (await alice.http.request(ConversationsDocument, { first: 2 })).conversations;
    expect(page1.edges.map((e) => e.node.peerUserId)).toEqual([peers[2].userId, peers[1].userId]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await alice.http.request(ConversationsDocument, { first: 2, after: page1.pageInfo.endCursor })).conversations;
    expect(page2.edges.map((e) => e.node.peerUserId)).toEqual([peers[0].userId]);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    expect(page1.edges[0].node.participantUserIds.sort()).toEqual([alice.userId, peers[2].userId].sort());

    const conv = page1.edges[0].node.id;
    const m1 = (await alice.http.request(MessagesDocument, { conversationId: conv, first: 4 })).messages;
    expect(m1.edges.map((e) => e.node.id)).toEqual([...sent].reverse().slice(0, 4));
    const m2 = (await alice.http.request(MessagesDocument, { conversationId: conv, first: 4, after: m1.pageInfo.endCursor }))
      .messages;
    expect(m2.edges).toHaveLength(2); // n0, then the first "hey"
    expect(m2.edges[0].node.id).toBe(sent[0]);
    expect(m2.pageInfo.hasNextPage).toBe(false);

    // Only participants see a conversation.
    const outsider = peers[0];
    const denied = await outsider.http.execute(MessagesDocument, { conversationId: conv, first: 1 });
    expect(denied.errors?.[0].extensions?.code).toBe("NOT_FOUND");
  });

  it("delete for me hides it from my history only; for everyone drops undelivered copies and tells the devices", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const kept = await sendOpaque(alice, bob.userId, "keep");
    const gone = await sendOpaque(alice, bob.userId, "oops");
    const conv = await conversationId(alice);
    // bob (device 1) received "oops"; bob2 has not.
    await ackAll(bob);

    expect((await bob.http.request(DeleteMessageDocument, { messageId: kept.messageId, forEveryone: false })).deleteMessage).toBe(true);
    expect((await history(bob, conv)).map((m) => m.id)).toEqual([gone.messageId]);
    expect((await history(alice, conv)).map((m) => m.id)).toEqual([gone.messageId, kept.messageId]);

    const notSender = await bob.http.execute(DeleteMessageDocument, { messageId: gone.messageId, forEveryone: true });
    expect(notSender.errors?.[0].extensions?.code).toBe("FORBIDDEN");

    expect((await alice.http.request(DeleteMessageDocument, { messageId: gone.messageId, forEveryone: true })).deleteMessage).toBe(true);
    expect((await history(alice, conv)).map((m) => m.id)).toEqual([kept.messageId]);
    const bob2Queue = await poll(bob2);
    expect(of(bob2Queue, "EnvelopeEvent").map((e) => e.envelope.messageId)).toEqual([kept.messageId]);
    expect(of(bob2Queue, "MessageDeletedEvent")).toMatchObject([{ messageId: gone.messageId, deletedByUserId: alice.userId }]);
    expect(of(await poll(bob), "MessageDeletedEvent")).toHaveLength(1);

    const stranger = await registerDevice(server.url);
    const hidden = await stranger.http.execute(DeleteMessageDocument, { messageId: kept.messageId, forEveryone: false });
    expect(hidden.errors?.[0].extensions?.code).toBe("NOT_FOUND");

    // Past the window (3 s here) a sender can no longer delete for everyone.
    await sleep(3200);
    const late = await alice.http.execute(DeleteMessageDocument, { messageId: kept.messageId, forEveryone: true });
    expect(late.errors?.[0].extensions?.code).toBe("FORBIDDEN");
  });

  it("self-destruct: nothing is served after its time, and the sweeper deletes message and every copy", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const lasting = await sendOpaque(alice, bob.userId, "stays");
    const brief = await sendOpaque(alice, bob.userId, "vanishes", { expiresInSeconds: 2 });
    const env = of(await poll(bob), "EnvelopeEvent").find((e) => e.envelope.messageId === brief.messageId)!;
    expect(Date.parse(env.envelope.expiresAt!) - Date.parse(env.envelope.serverTimestamp)).toBe(2000);
    expect(of(await poll(bob), "EnvelopeEvent").find((e) => e.envelope.messageId === lasting.messageId)!.envelope.expiresAt).toBeNull();
    await ackAll(bob); // delivered copies go too, not only undelivered ones

    const prisma = server.app.prisma;
    await eventually(async () => {
      expect(await prisma.message.count({ where: { id: brief.messageId } })).toBe(0);
      expect(await prisma.inboxItem.count({ where: { messageId: brief.messageId } })).toBe(0);
    }, 10_000);
    const conv = await conversationId(alice);
    expect((await history(alice, conv)).map((m) => m.id)).toEqual([lasting.messageId]);
    expect(of(await poll(bob2), "EnvelopeEvent").map((e) => e.envelope.messageId)).toEqual([lasting.messageId]);
  });

  it("reads filter expired items even before the sweeper runs", async () => {
    const slow = await startServer({ SWEEP_INTERVAL_MS: "3600000" });
    try {
      const alice = await registerDevice(slow.url);
      const bob = await registerDevice(slow.url);
      await sendOpaque(alice, bob.userId, "brief", { expiresInSeconds: 1 });
      expect(of(await poll(bob), "EnvelopeEvent")).toHaveLength(1);
      await sleep(1100);
      expect(await poll(bob)).toHaveLength(0);
      const ws = openWs(slow.url, bob.token);
      const sub = collect(ws, InboxDocument);
      await sleep(500);
      expect(sub.items.filter((x) => x.inbox.__typename === "EnvelopeEvent")).toHaveLength(0);
      sub.stop();
      await ws.dispose();
      const conv = (await alice.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;
      expect(await history(alice, conv)).toHaveLength(0);
      expect(await slow.app.prisma.message.count()).toBe(1); // still stored, never served
    } finally {
      await slow.close();
    }
  });

  it("refuses bad ids with BAD_USER_INPUT", async () => {
    const alice = await registerDevice(server.url);
    for (const r of [
      await alice.http.execute(MarkReadDocument, { messageIds: ["nope"] }),
      await alice.http.execute(DeleteMessageDocument, { messageId: "nope", forEveryone: false }),
      await alice.http.execute(MessagesDocument, { conversationId: "nope" }),
      await alice.http.execute(MarkReadDocument, { messageIds: Array.from({ length: 501 }, () => crypto.randomUUID()) }),
    ]) {
      expect(r.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    }
  });
});
