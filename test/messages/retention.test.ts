// Metadata retention of 1:1 messages and device link tokens (src/retention.ts): a message row goes once no copy of it
// is queued (acknowledged by every device, or expired) and the retention passed since its last status change; the
// conversation stays, and status and history answer for what is left. Spent and expired link tokens go. Each purge
// deletes bounded batches. The first block runs the node's own worker with a tiny retention; the second purges by
// hand at a chosen time (the worker's interval is an hour there).
import { describe, expect, it } from "vitest";
import {
  ConversationsDocument,
  CreateDeviceLinkDocument,
  DeleteMessageDocument,
  MarkReadDocument,
} from "../../src/client/generated/graphql.ts";
import { createLogger } from "../../src/logger.ts";
import { retentionPurges, runRetention } from "../../src/retention.ts";
import { linkNewDevice, registerDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";
import { refusal } from "../helpers/graphql.ts";
import { accept, ackAll, history, sendOpaque } from "../helpers/messaging.ts";
import { eventually } from "../helpers/wait.ts";

const DAY_MS = 86_400_000;
const logger = createLogger("silent");

describe("message metadata retention, by the node's worker", () => {
  const server = useServer({ METADATA_RETENTION_SECONDS: "1", DELETE_FOR_EVERYONE_WINDOW_SECONDS: "0", SWEEP_INTERVAL_MS: "200" });
  const row = (id: string) => server.app.prisma.message.findUnique({ where: { id } });

  it("drops a message once every copy is acknowledged and the retention passed; a queued copy keeps it", async () => {
    const alice = await registerDevice(server.url);
    const alice2 = await linkNewDevice(server.url, alice);
    const [bob, carol] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    // Delivered status is shown only to senders the recipient accepted (test/consent/).
    await accept(bob, alice);
    await accept(bob, carol);
    // m1 has two copies: bob's, and the sync copy of alice's second device.
    const m1 = await sendOpaque(alice, bob.userId, "to bob");
    const m2 = await sendOpaque(alice, carol.userId, "never fetched");
    const witness = await sendOpaque(carol, bob.userId, "witness");
    await ackAll(bob);
    const conversation = (await row(m1.messageId))!.conversationId;
    expect((await history(alice, conversation)).map((m) => [m.id, m.status])).toEqual([[m1.messageId, "DELIVERED"]]);

    // The witness was delivered with m1, in the same acknowledgement: once the worker dropped it, m1 is past the
    // retention too, and only alice2's unacknowledged copy keeps it; carol's queued copy keeps m2.
    await eventually(async () => expect(await row(witness.messageId)).toBeNull(), 30_000);
    expect(await row(m1.messageId)).not.toBeNull();
    expect(await row(m2.messageId)).not.toBeNull();

    await ackAll(alice2);
    await eventually(async () => expect(await row(m1.messageId)).toBeNull(), 30_000);
    expect(await row(m2.messageId)).toMatchObject({ deliveredAt: null });

    // What is left still answers: the conversation is listed (it is who talked to whom: contacts, typing, presence),
    // its history is empty, m2 is still SENT, and a late receipt or deletion of m1 is refused cleanly.
    const listed = (await alice.http.request(ConversationsDocument, { first: 10 })).conversations.edges.map((e) => e.node.id);
    expect(listed).toContain(conversation);
    expect(await history(alice, conversation)).toEqual([]);
    expect(await history(bob, conversation)).toEqual([]);
    const withCarol = (await row(m2.messageId))!.conversationId;
    expect((await history(alice, withCarol)).map((m) => [m.id, m.status])).toEqual([[m2.messageId, "SENT"]]);
    expect((await bob.http.request(MarkReadDocument, { messageIds: [m1.messageId] })).markRead).toBe(0);
    const refused = await refusal(alice.http.request(DeleteMessageDocument, { messageId: m1.messageId, forEveryone: true }));
    expect(refused.code).toBe("NOT_FOUND");

    // The pair talks on in the same conversation.
    const m3 = await sendOpaque(alice, bob.userId, "again");
    expect((await row(m3.messageId))!.conversationId).toBe(conversation);
    expect((await history(bob, conversation)).map((m) => m.id)).toEqual([m3.messageId]);
  });
});

describe("message and link retention, purged by hand", () => {
  const server = useServer({ SWEEP_INTERVAL_MS: "3600000" });
  const purges = () => retentionPurges(server.app.services);

  it("keeps a message for the retention after its last status change, and drops an expired copy's message", async () => {
    const [dave, erin] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    const delivered = await sendOpaque(dave, erin.userId, "delivered");
    await ackAll(erin);
    const unfetched = await sendOpaque(erin, dave.userId, "never fetched");
    const left = async () =>
      (await server.app.prisma.message.findMany({ where: { id: { in: [delivered.messageId, unfetched.messageId] } } })).map((m) => m.id);
    const purge = (days: number) => server.app.services.messages.purge(new Date(Date.now() + days * DAY_MS), 100);

    // The defaults: 30 days of retention, and dave's copy of the unfetched message is queued for 30 days.
    expect(await purge(29)).toBe(0);
    // Read on day 5: kept for the retention counted from then.
    await server.app.prisma.message.update({ where: { id: delivered.messageId }, data: { readAt: new Date(Date.now() + 5 * DAY_MS) } });
    expect(await purge(31)).toBe(1);
    expect(await left()).toEqual([delivered.messageId]);
    expect(await purge(36)).toBe(1);
    expect(await left()).toEqual([]);
  });

  it("purges in bounded batches: a run stops at its cap, the next one goes on", async () => {
    const [frank, gina] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    for (let i = 0; i < 5; i++) await sendOpaque(frank, gina.userId, `m${i}`);
    await ackAll(gina);
    const count = () => server.app.prisma.message.count({ where: { senderUserId: frank.userId } });
    const later = new Date(Date.now() + 31 * DAY_MS);
    expect(await server.app.services.messages.purge(later, 2)).toBe(2);
    expect(await count()).toBe(3);
    const run = await runRetention(purges(), later, logger, { batch: 1, maxBatches: 2 });
    expect(run.messages).toBe(2);
    expect(await count()).toBe(1);
    expect((await runRetention(purges(), later, logger, { batch: 1, maxBatches: 2 })).messages).toBe(1);
    expect(await count()).toBe(0);
  });

  it("purges spent link tokens at once and unspent ones when they expire", async () => {
    const henry = await registerDevice(server.url);
    const links = () => server.app.prisma.deviceLink.count({ where: { userId: henry.userId } });
    await linkNewDevice(server.url, henry); // creates a link and spends it
    await henry.http.request(CreateDeviceLinkDocument);
    expect(await links()).toBe(2);
    const purgeLinks = (atMs: number) => server.app.services.devices.purgeLinks(new Date(atMs), 100);
    expect(await purgeLinks(Date.now())).toBeGreaterThanOrEqual(1);
    expect(await links()).toBe(1);
    expect(await purgeLinks(Date.now() + 11 * 60_000)).toBeGreaterThanOrEqual(1);
    expect(await links()).toBe(0);
  });
});
