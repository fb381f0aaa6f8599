// Consent changes reach streams that are already open: a block or a privacy change after a presence or typing
// subscription started. Shared by consent.test.ts (one server) and nodes.test.ts (the change made on node A, the
// watcher's socket on node B): `a` holds the watched user's sockets and takes its mutations, `b` the watcher's.
import { expect } from "vitest";
import {
  BlockUserDocument,
  ConversationsDocument,
  MeDocument,
  PresenceDocument,
  PresenceUpdatesDocument,
  SetPresencePrivacyDocument,
  SetTypingDocument,
  TypingDocument,
  UnblockUserDocument,
} from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { refreshUntilSeen, sendOpaque } from "../helpers/messaging.ts";
import { eventually } from "../helpers/wait.ts";

type Node = { url: string };
const ownPresence = async (d: TestDevice) => (await d.http.request(PresenceDocument, { userIds: [d.userId] })).presence[0];

/** A socket that makes `d` online, once its own account sees it. */
async function online(node: Node, d: TestDevice) {
  const ws = openWs(node.url, d.token, { lazy: false });
  await wsRequest(ws, MeDocument);
  await eventually(async () => expect((await ownPresence(d)).online).toBe(true));
  return ws;
}

/** Closes `d`'s only socket and waits until its offline state is recorded (its event is published right after). */
async function offline(ws: { dispose(): unknown }, d: TestDevice) {
  await ws.dispose();
  await eventually(async () => expect((await ownPresence(d)).lastSeen).not.toBeNull());
}

/**
 * Mallory watches Bob (who wrote to her) and Alice (the fence: her events follow Bob's from the same node). Bob
 * blocks Mallory: his later changes stop reaching her open stream; unblocking sends her his current state; NOBODY
 * stops them again.
 */
export async function presenceFollowsConsent(a: Node, b: Node) {
  const bob = await registerDevice(a.url);
  const alice = await registerDevice(a.url);
  const mallory = await registerDevice(a.url);
  await sendOpaque(bob, mallory.userId, "hi mallory"); // Bob accepted Mallory: she sees his presence
  await sendOpaque(alice, mallory.userId, "hi from alice");
  let wsBob = await online(a, bob);
  let wsAlice = await online(a, alice);
  const wsMallory = openWs(b.url, mallory.token);
  try {
    const watch = collect(wsMallory, PresenceUpdatesDocument, { userIds: [bob.userId, alice.userId] });
    const of = (userId: string) => watch.items.map((x) => x.presence).filter((p) => p.userId === userId);
    await watch.until(() => of(bob.userId).length === 1 && of(alice.userId).length === 1, 15_000, "both online");
    expect(of(bob.userId)).toEqual([{ userId: bob.userId, online: true, lastSeen: null }]);

    expect(await bob.http.request(BlockUserDocument, { userId: mallory.userId })).toEqual({ blockUser: true });
    await offline(wsBob, bob);
    await offline(wsAlice, alice);
    await watch.until(() => of(alice.userId).some((p) => !p.online), 15_000, "the fence: alice offline");
    // Before: the stream kept what it decided at the start, and Bob's going offline reached the user he blocked.
    expect(of(bob.userId)).toHaveLength(1);

    await bob.http.request(UnblockUserDocument, { userId: mallory.userId });
    await watch.until(() => of(bob.userId).length === 2, 15_000, "bob's state after the unblock");
    expect(of(bob.userId)[1]).toMatchObject({ userId: bob.userId, online: false, lastSeen: expect.any(String) });

    await bob.http.request(SetPresencePrivacyDocument, { visibility: "NOBODY" });
    wsBob = await online(a, bob);
    wsAlice = await online(a, alice);
    await watch.until(() => of(alice.userId).filter((p) => p.online).length === 2, 15_000, "the fence: alice online again");
    expect(of(bob.userId)).toHaveLength(2);
    watch.stop();
  } finally {
    await Promise.all([wsBob.dispose(), wsAlice.dispose(), wsMallory.dispose()]);
  }
}

/**
 * Mallory watches typing with Bob, and with Carol (the fence: Carol types after Bob, through the same node). Bob
 * blocks her: his typing, which still passes the publish check (she did not block him), no longer reaches her
 * open stream; after the unblock it does again.
 */
export async function typingFollowsBlocks(a: Node, b: Node) {
  const [bob, mallory, carol] = await Promise.all([registerDevice(a.url), registerDevice(a.url), registerDevice(a.url)]);
  // Each accepted the other: typing passes both ways.
  for (const [x, y] of [[bob, mallory], [mallory, bob], [carol, mallory], [mallory, carol]]) await sendOpaque(x, y.userId, "hi");
  const conversationWith = async (d: TestDevice) => (await d.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;
  const [withBob, withCarol] = [await conversationWith(bob), await conversationWith(carol)];
  const ws = openWs(b.url, mallory.token);
  try {
    const sub = collect(ws, TypingDocument, { conversationId: withBob });
    const fence = collect(ws, TypingDocument, { conversationId: withCarol });
    const fromBob = () => sub.items.map((x) => x.typing).filter((t) => t.userId === bob.userId);
    await refreshUntilSeen(bob, withBob, sub);
    await refreshUntilSeen(carol, withCarol, fence);
    await bob.http.request(SetTypingDocument, { conversationId: withBob, isTyping: false });
    await sub.until(() => fromBob().some((t) => !t.isTyping), 15_000, "bob stopped typing");
    const before = fromBob().length;

    await bob.http.request(BlockUserDocument, { userId: mallory.userId });
    await bob.http.request(SetTypingDocument, { conversationId: withBob, isTyping: true });
    await carol.http.request(SetTypingDocument, { conversationId: withCarol, isTyping: false });
    await fence.until((xs) => xs.some((x) => !x.typing.isTyping), 15_000, "the fence");
    // Before: the blocked set was read once, when the stream started.
    expect(fromBob()).toHaveLength(before);

    await bob.http.request(UnblockUserDocument, { userId: mallory.userId });
    // The unblock's notice goes out before it answers, so this one event is judged by the new state.
    await bob.http.request(SetTypingDocument, { conversationId: withBob, isTyping: true });
    await sub.until(() => fromBob().length > before, 15_000, "bob's typing after the unblock");
    [sub, fence].forEach((s) => s.stop());
  } finally {
    await ws.dispose();
  }
}
