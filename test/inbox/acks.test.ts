// Batched acknowledgements (src/inbox/acks.ts): an ack is answered only once its statement committed, the senders'
// devices get one receipt per acknowledgement batch listing the message ids, and concurrent acks of overlapping
// ids from several devices lose and double nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckEnvelopesDocument, InboxDocument, type InboxSubscription } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { sqlClient, usingPostgres } from "../helpers/database.ts";
import { collect } from "../helpers/live.ts";
import { sleep } from "../helpers/wait.ts";
import { accept, sendOpaque } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

type Ev = InboxSubscription["inbox"];
type Receipt = Extract<Ev, { __typename: "ReceiptEvent" }>;
type Envelope = Extract<Ev, { __typename: "EnvelopeEvent" }>;
const receipts = (xs: { inbox: Ev }[]) => xs.map((x) => x.inbox).filter((e): e is Receipt => e.__typename === "ReceiptEvent");
const envelopes = (xs: { inbox: Ev }[]) => xs.map((x) => x.inbox).filter((e): e is Envelope => e.__typename === "EnvelopeEvent");

describe("batched acknowledgements", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  /** The queue of a device as the inbox subscription replays it. */
  async function queued(device: TestDevice, n: number): Promise<Envelope[]> {
    const ws = openWs(server.url, device.token);
    try {
      const sub = collect(ws, InboxDocument);
      await sub.until((xs) => envelopes(xs).length >= n, 15_000, `${n} envelopes`);
      sub.stop();
      return envelopes(sub.items);
    } finally {
      await ws.dispose();
    }
  }

  const delivered = async (messageIds: string[]) =>
    server.app.prisma.message.count({ where: { id: { in: messageIds }, deliveredAt: { not: null } } });

  it("one ack call of five envelopes gives each of the sender's devices one receipt listing the five, in order", async () => {
    const alice = await registerDevice(server.url);
    const alice2 = await linkNewDevice(server.url, alice);
    const bob = await registerDevice(server.url);
    await accept(bob, alice); // receipts go only to senders the recipient accepted (test/consent/)
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await sendOpaque(alice, bob.userId, `m${i}`)).messageId);
    const items = await queued(bob, 5);
    const wsA = openWs(server.url, alice.token);
    const wsA2 = openWs(server.url, alice2.token);
    try {
      const a = collect(wsA, InboxDocument);
      const a2 = collect(wsA2, InboxDocument);
      // alice2 first drains its five sync copies, so only receipts are left to arrive.
      await a2.until((xs) => envelopes(xs).length === 5);
      const { ackEnvelopes } = await bob.http.request(AckEnvelopesDocument, { ids: items.map((e) => e.id) });
      expect(ackEnvelopes).toBe(5);
      for (const sub of [a, a2]) {
        await sub.until((xs) => receipts(xs).length >= 1);
        await sleep(200);
        const rs = receipts(sub.items);
        expect(rs).toHaveLength(1);
        expect(rs[0].messageIds).toEqual(sent);
        expect(rs[0].messageId).toBe(sent[0]);
        expect(rs[0]).toMatchObject({ kind: "DELIVERED", userId: bob.userId });
      }
      expect(await delivered(sent)).toBe(5);
      // Acknowledging the receipt removes it; the same ids again acknowledge nothing and queue nothing.
      const receiptId = receipts(a.items)[0].id;
      expect((await alice.http.request(AckEnvelopesDocument, { ids: [receiptId] })).ackEnvelopes).toBe(1);
      expect((await alice.http.request(AckEnvelopesDocument, { ids: [receiptId] })).ackEnvelopes).toBe(0);
      expect((await bob.http.request(AckEnvelopesDocument, { ids: items.map((e) => e.id) })).ackEnvelopes).toBe(0);
      await sleep(200);
      expect(receipts(a2.items)).toHaveLength(1);
    } finally {
      await wsA.dispose();
      await wsA2.dispose();
    }
  });

  it("sync copies acknowledged by the sender's other device mark nothing delivered and queue no receipt", async () => {
    const alice = await registerDevice(server.url);
    const alice2 = await linkNewDevice(server.url, alice);
    const bob = await registerDevice(server.url);
    const { messageId } = await sendOpaque(alice, bob.userId, "only synced");
    const [copy] = await queued(alice2, 1);
    expect((await alice2.http.request(AckEnvelopesDocument, { ids: [copy.id] })).ackEnvelopes).toBe(1);
    expect(await delivered([messageId])).toBe(0);
    expect(await server.app.prisma.inboxItem.count({ where: { userId: alice.userId, kind: "receipt" } })).toBe(0);
  });

  it("concurrent acks of overlapping ids from several devices lose and double nothing", async () => {
    const alice = await registerDevice(server.url);
    const bobs = await Promise.all([0, 1, 2].map(() => registerDevice(server.url)));
    for (const b of bobs) await accept(b, alice);
    const PER = 30;
    const sent: string[] = [];
    for (let i = 0; i < PER; i++) {
      sent.push(...(await Promise.all(bobs.map((b) => sendOpaque(alice, b.userId, `c${i}`)))).map((r) => r.messageId));
    }
    const wsA = openWs(server.url, alice.token);
    try {
      const a = collect(wsA, InboxDocument);
      let counted = 0;
      await Promise.all(
        bobs.map(async (bob) => {
          const ids = (await queued(bob, PER)).map((e) => e.id);
          // Every id twice, in overlapping calls of different sizes, all in flight at once.
          const calls = [ids.slice(0, 10), ids.slice(5, 20), ids.slice(15), ids.slice(0, 1), ids, ids.slice(20, 25)];
          const counts = await Promise.all(calls.map((c) => bob.http.request(AckEnvelopesDocument, { ids: c })));
          counted += counts.reduce((n, c) => n + c.ackEnvelopes, 0);
        }),
      );
      expect(counted).toBe(PER * bobs.length);
      expect(await delivered(sent)).toBe(sent.length);
      expect(await server.app.prisma.inboxItem.count({ where: { userId: { in: bobs.map((b) => b.userId) } } })).toBe(0);
      // Each message is in exactly one receipt.
      await a.until((xs) => receipts(xs).flatMap((r) => r.messageIds).length >= sent.length);
      await sleep(200);
      const listed = receipts(a.items).flatMap((r) => r.messageIds);
      expect(listed.length).toBe(sent.length);
      expect(new Set(listed)).toEqual(new Set(sent));
    } finally {
      await wsA.dispose();
    }
  });

  it.skipIf(!usingPostgres)("answers an ack only after its statement committed", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    await accept(bob, alice);
    const { messageId } = await sendOpaque(alice, bob.userId, "held");
    const [item] = await queued(bob, 1);
    const other = await sqlClient(server.db.url!);
    try {
      // Another transaction holds the message's row: the ack's statement cannot finish until it lets go.
      await other.query("BEGIN");
      await other.query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE", [messageId]);
      let answered = false;
      const ack = bob.http.request(AckEnvelopesDocument, { ids: [item.id] }).then((r) => ((answered = true), r));
      await sleep(500);
      expect(answered).toBe(false);
      const seen = await other.query("SELECT count(*)::int AS n FROM inbox_items WHERE id = $1", [item.id]);
      expect(seen.rows[0].n).toBe(1);
      await other.query("COMMIT");
      expect((await ack).ackEnvelopes).toBe(1);
      const after = await other.query(
        "SELECT (SELECT count(*)::int FROM inbox_items WHERE id = $1) AS items, (SELECT delivered_at IS NOT NULL FROM messages WHERE id = $2) AS delivered",
        [item.id, messageId],
      );
      expect(after.rows[0]).toEqual({ items: 0, delivered: true });
    } finally {
      await other.end();
    }
  });
});
