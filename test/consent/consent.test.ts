// Consent against a real server (PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set): a stranger's first
// message is a request that reveals nothing of the recipient (presence, typing, device names, delivered status)
// until accepted; a blocked user's sends answer as usual and reach nothing; reports record only what the reporter
// gives; the presence privacy setting.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  AcceptMessageRequestDocument,
  AckEnvelopesDocument,
  BlockUserDocument,
  ClaimKeyPackagesDocument,
  ConversationsDocument,
  DevicesDocument,
  InboxDocument,
  MeDocument,
  MessageRequestsDocument,
  MessagesDocument,
  PollInboxDocument,
  PresenceDocument,
  ReportMessageDocument,
  SendMessageDocument,
  SetPresencePrivacyDocument,
  SetTypingDocument,
  TypingDocument,
  UnblockUserDocument,
} from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { opaqueInput, refreshUntilSeen, sendOpaque, unb64 } from "../helpers/messaging.ts";
import { useServer } from "../helpers/fixture.ts";
import { mlsMember } from "../helpers/groups.ts";
import { eventually } from "../helpers/wait.ts";
import { presenceFollowsConsent, typingFollowsBlocks } from "./live-consent.ts";

const presenceOf = async (viewer: TestDevice, userId: string) =>
  (await viewer.http.request(PresenceDocument, { userIds: [userId] })).presence;
const conversationWith = async (d: TestDevice, peer: string) =>
  (await d.http.request(ConversationsDocument, { first: 50 })).conversations.edges.map((e) => e.node).find((c) => c.peerUserId === peer)!.id;
const poll = async (d: TestDevice) => (await d.http.request(PollInboxDocument, { first: 500 })).inbox;
const envelopeIds = async (d: TestDevice) =>
  (await poll(d)).flatMap((e) => (e.__typename === "EnvelopeEvent" ? [e.envelope.messageId] : []));

/** Connects a device so it counts as online, and waits until its own account sees it. */
async function online(server: { url: string }, d: TestDevice) {
  const ws = openWs(server.url, d.token, { lazy: false });
  await wsRequest(ws, MeDocument);
  await eventually(async () => expect((await presenceOf(d, d.userId))[0].online).toBe(true));
  return ws;
}

/** Typing the subscriber must not see, fenced by typing it must: `own2` is another device of the subscriber. */
async function typingDropped(server: { url: string }, viewer: TestDevice, own2: TestDevice, typer: TestDevice, conversationId: string) {
  const ws = openWs(server.url, viewer.token);
  try {
    const sub = collect(ws, TypingDocument, { conversationId });
    await refreshUntilSeen(own2, conversationId, sub); // the subscription is in place
    expect(await typer.http.request(SetTypingDocument, { conversationId, isTyping: true })).toEqual({ setTyping: true });
    await own2.http.request(SetTypingDocument, { conversationId, isTyping: false });
    await sub.until((xs) => xs.some((x) => !x.typing.isTyping && x.typing.userId === own2.userId), 15_000, "the fence");
    return sub.items.filter((x) => x.typing.userId === typer.userId);
  } finally {
    await ws.dispose();
  }
}

describe("consent", () => {
  const server = useServer({ PRESENCE_TTL_MS: "3000" });

  it("a stranger's one envelope is a request: no presence, device names, typing or delivered status until accepted", async () => {
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    const eve2 = await linkNewDevice(server.url, eve);
    const wsBob = await online(server, bob);
    try {
      const sent = await sendOpaque(eve, bob.userId, "hello from a stranger");
      // Before: a stranger's one message made a "contact" who saw online: true and the device names.
      expect(await presenceOf(eve, bob.userId)).toEqual([]);
      const seenByEve = (await eve.http.request(DevicesDocument, { userId: bob.userId })).devices;
      expect(seenByEve).toEqual([{ userId: bob.userId, deviceId: 1, name: null, registrationId: expect.any(Number), createdAt: null }]);
      const own = (await bob.http.request(DevicesDocument, { userId: bob.userId })).devices;
      expect(own[0].createdAt).toEqual(expect.any(String));
      const eveOwn = (await eve2.http.request(DevicesDocument, { userId: eve.userId })).devices;
      expect(eveOwn.every((d) => d.createdAt !== null)).toBe(true);

      // Bob sees the request apart, and his device gets the envelope (a request is still delivered to him).
      expect((await bob.http.request(MessageRequestsDocument)).messageRequests).toEqual([{ userId: eve.userId, since: expect.any(String) }]);
      expect(await envelopeIds(bob)).toEqual([sent.messageId]);
      // His device acknowledging it, and his typing, tell Eve nothing.
      const ids = (await poll(bob)).flatMap((e) => ("id" in e && e.id ? [e.id] : []));
      await bob.http.request(AckEnvelopesDocument, { ids });
      const conversationId = await conversationWith(bob, eve.userId);
      expect(await typingDropped(server, eve, eve2, bob, conversationId)).toEqual([]);
      const status = async () => (await eve.http.request(MessagesDocument, { conversationId, first: 10 })).messages.edges[0].node;
      expect(await status()).toMatchObject({ id: sent.messageId, status: "SENT", deliveredAt: null });
      expect((await poll(eve)).filter((e) => e.__typename === "ReceiptEvent")).toEqual([]);

      await bob.http.request(AcceptMessageRequestDocument, { userId: eve.userId });
      expect((await bob.http.request(MessageRequestsDocument)).messageRequests).toEqual([]);
      expect(await presenceOf(eve, bob.userId)).toEqual([{ userId: bob.userId, online: true, lastSeen: null }]);
      const second = await sendOpaque(eve, bob.userId, "after accept");
      const items = (await poll(bob)).filter((e) => e.__typename === "EnvelopeEvent" && e.envelope.messageId === second.messageId);
      await bob.http.request(AckEnvelopesDocument, { ids: items.map((e) => ("id" in e ? e.id! : "")) });
      await eventually(async () => {
        const m = (await eve.http.request(MessagesDocument, { conversationId, first: 10 })).messages.edges[0].node;
        expect(m).toMatchObject({ id: second.messageId, status: "DELIVERED" });
      });
    } finally {
      await wsBob.dispose();
    }
  });

  it("a reply accepts: the stranger sees presence once the recipient wrote back", async () => {
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    const wsBob = await online(server, bob);
    try {
      await sendOpaque(eve, bob.userId, "hi");
      expect(await presenceOf(eve, bob.userId)).toEqual([]);
      await sendOpaque(bob, eve.userId, "who is this?");
      expect(await presenceOf(eve, bob.userId)).toEqual([{ userId: bob.userId, online: true, lastSeen: null }]);
      expect((await bob.http.request(MessageRequestsDocument)).messageRequests).toEqual([]);
    } finally {
      await wsBob.dispose();
    }
  });

  it("a send refused by its device-set check accepts nobody: only a taken send makes a contact", async () => {
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    const wsBob = await online(server, bob);
    try {
      const code = async (p: Promise<{ errors?: readonly { extensions?: Record<string, unknown> }[] }>) => (await p).errors?.[0]?.extensions?.code;
      const good = await opaqueInput(bob, eve.userId, "x");
      const wrongDevice = { ...good, envelopes: good.envelopes.map((e) => ({ ...e, deviceId: 7 })) };
      const staleDevice = { ...good, envelopes: good.envelopes.map((e) => ({ ...e, registrationId: (e.registrationId % 16000) + 1 })) };
      expect(await code(bob.http.execute(SendMessageDocument, { input: { ...wrongDevice, clientMessageId: randomUUID() } }))).toBe("MISMATCHED_DEVICES");
      expect(await code(bob.http.execute(SendMessageDocument, { input: { ...staleDevice, clientMessageId: randomUUID() } }))).toBe("STALE_DEVICES");
      expect(await code(bob.http.execute(SendMessageDocument, { input: { ...wrongDevice, clientMessageId: randomUUID(), online: true } }))).toBe("MISMATCHED_DEVICES");
      // Before: each refused send recorded Bob accepting Eve, who then saw his presence and sent as a contact.
      const contacts = () => server.app.prisma.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM consent_contacts WHERE user_id = ${bob.userId}::uuid AND contact_user_id = ${eve.userId}::uuid`;
      expect(await contacts()).toEqual([{ n: 0 }]);
      expect(await presenceOf(eve, bob.userId)).toEqual([]);
      await bob.http.request(SendMessageDocument, { input: good });
      expect(await contacts()).toEqual([{ n: 1 }]);
      expect(await presenceOf(eve, bob.userId)).toHaveLength(1);
    } finally {
      await wsBob.dispose();
    }
  });

  it("a blocked sender's sends answer as usual, and nothing is delivered, queued or shown; typing is dropped", async () => {
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const mallory = await registerDevice(server.url);
    const alice = await registerDevice(server.url);
    await sendOpaque(bob, mallory.userId, "we used to talk"); // accepted: mallory saw bob's presence until the block
    await sendOpaque(mallory, bob.userId, "before the block");
    const wsBob = await online(server, bob);
    try {
      expect(await presenceOf(mallory, bob.userId)).toHaveLength(1);
      expect(await bob.http.request(BlockUserDocument, { userId: mallory.userId.toUpperCase() })).toEqual({ blockUser: true });
      const inbox = collect(wsBob, InboxDocument);
      const blocked = await sendOpaque(mallory, bob.userId, "you cannot hide");
      expect(Object.keys(blocked).sort()).toEqual(["input", "messageId", "serverTimestamp"]);
      expect(blocked.messageId).toMatch(/^[0-9a-f-]{36}$/);
      const live = await sendOpaque(mallory, bob.userId, "live only", { online: true });
      expect(live.messageId).toMatch(/^[0-9a-f-]{36}$/);
      // A fence: Alice's message, sent after Mallory's, arrives; Mallory's never did.
      const fence = await sendOpaque(alice, bob.userId, "fence");
      await inbox.until((xs) => xs.some((x) => x.inbox.__typename === "EnvelopeEvent" && x.inbox.envelope.messageId === fence.messageId));
      const arrived = inbox.items.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" || x.inbox.__typename === "LiveEnvelopeEvent" ? [x.inbox.envelope] : []));
      expect(arrived.map((e) => unb64(e.body))).not.toContain("you cannot hide@1");
      expect(arrived.filter((e) => e.senderUserId === mallory.userId).map((e) => unb64(e.body))).toEqual(["before the block@1"]);
      inbox.stop();
      // Nothing queued for either of Bob's devices, in the database itself.
      const queued = await server.app.prisma.inboxItem.count({ where: { userId: bob.userId, messageId: blocked.messageId } });
      expect(queued).toBe(0);
      expect(await envelopeIds(bob2)).not.toContain(blocked.messageId);
      // The same answer on a retry (idempotency holds), and no presence of the blocker for Mallory.
      const { sendMessage } = await mallory.http.request(SendMessageDocument, { input: blocked.input });
      expect(sendMessage.messageId).toBe(blocked.messageId);
      expect(await presenceOf(mallory, bob.userId)).toEqual([]);
      expect(await presenceOf(bob, mallory.userId)).toEqual([]);
      const conversationId = await conversationWith(bob, mallory.userId);
      expect(await typingDropped(server, bob, bob2, mallory, conversationId)).toEqual([]);

      await bob.http.request(UnblockUserDocument, { userId: mallory.userId });
      const after = await sendOpaque(mallory, bob.userId, "sorry");
      expect(await envelopeIds(bob2)).toContain(after.messageId);
    } finally {
      await wsBob.dispose();
    }
  });

  it("a blocked user cannot invite the blocker to a group: the blocker's key packages are not handed to them", async () => {
    const bob = await mlsMember(server.url);
    const mallory = await mlsMember(server.url);
    const carol = await mlsMember(server.url);
    await bob.http.request(BlockUserDocument, { userId: mallory.userId });
    const refused = await mallory.http.execute(ClaimKeyPackagesDocument, { userIds: [carol.userId, bob.userId] });
    // The answer a user who published no key package gets: nothing tells Mallory she is blocked.
    expect(refused.errors?.[0]).toMatchObject({ message: `device ${bob.userId}.1 has no key package`, extensions: { code: "NOT_FOUND" } });
    const claimed = (await carol.http.request(ClaimKeyPackagesDocument, { userIds: [bob.userId] })).claimKeyPackages;
    expect(claimed.map((k) => k.userId)).toEqual([bob.userId]);
    await bob.http.request(UnblockUserDocument, { userId: mallory.userId });
    expect((await mallory.http.request(ClaimKeyPackagesDocument, { userIds: [bob.userId] })).claimKeyPackages).toHaveLength(1);
  });

  it("blockUser and acceptMessageRequest refuse bad targets; a report records what the reporter gave, bounded", async () => {
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    const carol = await registerDevice(server.url);
    const code = async (p: Promise<{ errors?: readonly { extensions?: Record<string, unknown> }[] }>) => (await p).errors?.[0]?.extensions?.code;
    expect(await code(bob.http.execute(BlockUserDocument, { userId: "00000000-0000-4000-8000-000000000000" }))).toBe("NOT_FOUND");
    expect(await code(bob.http.execute(BlockUserDocument, { userId: bob.userId }))).toBe("BAD_USER_INPUT");
    expect(await code(bob.http.execute(BlockUserDocument, { userId: "-".repeat(36) }))).toBe("BAD_USER_INPUT");
    expect(await code(bob.http.execute(AcceptMessageRequestDocument, { userId: "not a uuid" }))).toBe("BAD_USER_INPUT");

    const m = await sendOpaque(eve, bob.userId, "spam");
    const report = (d: TestDevice, reason?: string | null, excerpt?: string | null) =>
      d.http.execute(ReportMessageDocument, { messageId: m.messageId, reason, excerpt });
    expect(await code(report(bob, "x".repeat(501)))).toBe("BAD_USER_INPUT");
    expect(await code(report(bob, "spam", "y".repeat(4001)))).toBe("BAD_USER_INPUT");
    expect(await code(report(carol, "not mine"))).toBe("NOT_FOUND"); // a message Carol cannot see
    expect((await report(bob, "  spam  ", "buy now")).data).toEqual({ reportMessage: true });
    expect((await report(bob, null, null)).data).toEqual({ reportMessage: true });
    const rows = await server.app.prisma.$queryRaw<Record<string, unknown>[]>`
      SELECT reporter_user_id::text AS reporter, reporter_device_id AS device, sender_user_id::text AS sender, reason, excerpt
      FROM consent_reports WHERE message_id = ${m.messageId}::uuid ORDER BY created_at, reason NULLS LAST`;
    expect(rows).toEqual([
      { reporter: bob.userId, device: 1, sender: eve.userId, reason: "spam", excerpt: "buy now" },
      { reporter: bob.userId, device: 1, sender: eve.userId, reason: null, excerpt: null },
    ]);
  });

  it("presence privacy: NOBODY hides from accepted contacts, EVERYONE shows to strangers but never to the blocked", async () => {
    const bob = await registerDevice(server.url);
    const alice = await registerDevice(server.url);
    const stranger = await registerDevice(server.url);
    const blocked = await registerDevice(server.url);
    await sendOpaque(bob, alice.userId, "hi alice");
    await bob.http.request(BlockUserDocument, { userId: blocked.userId });
    const ws = await online(server, bob);
    try {
      expect(await presenceOf(alice, bob.userId)).toHaveLength(1);
      expect(await presenceOf(stranger, bob.userId)).toEqual([]);
      await bob.http.request(SetPresencePrivacyDocument, { visibility: "NOBODY" });
      expect(await presenceOf(alice, bob.userId)).toEqual([]);
      expect((await presenceOf(bob, bob.userId))[0].online).toBe(true);
      await bob.http.request(SetPresencePrivacyDocument, { visibility: "EVERYONE" });
      expect(await presenceOf(stranger, bob.userId)).toEqual([{ userId: bob.userId, online: true, lastSeen: null }]);
      expect(await presenceOf(blocked, bob.userId)).toEqual([]);
    } finally {
      await ws.dispose();
    }
  });

  it("a block or privacy change reaches presence subscriptions already open: no more of the blocker's presence", async () => {
    await presenceFollowsConsent(server, server);
  });

  it("a block reaches typing subscriptions already open: the blocker's typing no longer arrives", async () => {
    await typingFollowsBlocks(server, server);
  });
});
