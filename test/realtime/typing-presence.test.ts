// Typing and presence on one node (the multi-node behaviour is in messages.nodes.test.ts).
import { describe, expect, it } from "vitest";
import {
  ConversationsDocument,
  MeDocument,
  PresenceDocument,
  PresenceUpdatesDocument,
  SetTypingDocument,
  TypingDocument,
} from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { accept, refreshUntilSeen, sendOpaque } from "../helpers/messaging.ts";
import { useServer } from "../helpers/fixture.ts";
import { eventually, sleep } from "../helpers/wait.ts";

describe("typing and presence", () => {
  const server = useServer({ TYPING_TTL_MS: "1000", PRESENCE_TTL_MS: "3000" });

  it("typing reaches the other participant, lapses by itself, and is closed to outsiders", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    await sendOpaque(alice, bob.userId, "hi");
    const conversationId = (await alice.http.request(ConversationsDocument, { first: 1 })).conversations.edges[0].node.id;
    const wsBob = openWs(server.url, bob.token);
    const wsEve = openWs(server.url, eve.token);
    try {
      const sub = collect(wsBob, TypingDocument, { conversationId });
      // Typing is not stored: an event published before the subscription is in place is gone. A client refreshes
      // its typing state anyway, so refresh until the first one arrives.
      await refreshUntilSeen(alice, conversationId, sub);
      expect(sub.items[0].typing).toMatchObject({ conversationId, userId: alice.userId, deviceId: 1, isTyping: true });
      // No more refreshes: the state lapses by itself after TYPING_TTL_MS (1 s here).
      await sub.until((xs) => !xs[xs.length - 1].typing.isTyping, 5_000, "the lapse");
      expect(sub.items[sub.items.length - 1].typing).toMatchObject({ userId: alice.userId, isTyping: false, expiresAt: null });

      const seen = sub.items.length;
      await alice.http.request(SetTypingDocument, { conversationId, isTyping: true });
      await alice.http.request(SetTypingDocument, { conversationId, isTyping: false });
      await sub.until((xs) => xs.length >= seen + 2);
      await sleep(1300); // an explicit stop leaves no lapse behind
      expect(sub.items.slice(seen).map((x) => x.typing.isTyping)).toEqual([true, false]);

      const forbidden = await eve.http.execute(SetTypingDocument, { conversationId, isTyping: true });
      expect(forbidden.errors?.[0].extensions?.code).toBe("FORBIDDEN");
      const eavesdrop = collect(wsEve, TypingDocument, { conversationId });
      await eavesdrop.until(() => eavesdrop.errors.length > 0).catch(() => {});
      expect(eavesdrop.errors.length).toBe(1);
      expect(JSON.stringify(eavesdrop.errors[0])).toContain("FORBIDDEN");
      sub.stop();
    } finally {
      await Promise.all([wsBob.dispose(), wsEve.dispose()]);
    }
  });

  it("a user is online while any device is connected, then offline with last seen; only contacts may look", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const eve = await registerDevice(server.url);
    await sendOpaque(alice, bob.userId, "hi");
    await accept(bob, alice); // presence only to those the user accepted (test/consent/)
    const wsAlice = openWs(server.url, alice.token);
    try {
      const watch = collect(wsAlice, PresenceUpdatesDocument, { userIds: [bob.userId, eve.userId] });
      // Eve shares no conversation with Alice: left out of both the first states and the changes.
      await watch.until((xs) => xs.length >= 1);
      expect(watch.items[0].presence).toMatchObject({ userId: bob.userId, online: false, lastSeen: null });

      const wsBob = openWs(server.url, bob.token, { lazy: false });
      await wsRequest(wsBob, MeDocument); // the connection is authenticated
      await watch.until((xs) => xs.some((x) => x.presence.online));
      expect((await alice.http.request(PresenceDocument, { userIds: [bob.userId, eve.userId] })).presence).toEqual([
        { userId: bob.userId, online: true, lastSeen: null },
      ]);

      const wsEve = openWs(server.url, eve.token, { lazy: false });
      await wsRequest(wsEve, MeDocument);
      await wsBob.dispose();
      const offline = await watch.until((xs) => xs.length >= 3 && !xs[xs.length - 1].presence.online);
      const last = offline[offline.length - 1].presence;
      expect(last.userId).toBe(bob.userId);
      expect(Date.now() - Date.parse(last.lastSeen!)).toBeLessThan(60_000);
      expect(watch.items.every((x) => x.presence.userId === bob.userId)).toBe(true);
      await eventually(async () => {
        const { presence } = await alice.http.request(PresenceDocument, { userIds: [bob.userId] });
        expect(presence[0]).toMatchObject({ online: false, lastSeen: last.lastSeen });
      });
      expect((await eve.http.request(PresenceDocument, { userIds: [alice.userId, bob.userId] })).presence).toEqual([]);
      watch.stop();
      await wsEve.dispose();
    } finally {
      await wsAlice.dispose();
    }
  });
});
