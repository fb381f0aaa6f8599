// The per-device queue and the inbox subscription: replay then live with no loss or duplicate at the seam,
// acknowledgement, polling, pre-keys-low and device-list events, and the bounded subscriber feed.
import { describe, expect, it } from "vitest";
import {
  AckEnvelopesDocument,
  ClaimPreKeyBundlesDocument,
  DeactivateDeviceDocument,
  InboxDocument,
  PollInboxDocument,
  type InboxSubscription,
} from "../../src/client/generated/graphql.ts";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { openWs, wsUrl } from "../../src/client/transport.ts";
import { Feed } from "../../src/live/feed.ts";
import { linkNewDevice, registerDevice } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { opaqueInput, sendOpaque, unb64 } from "../helpers/messaging.ts";
import { startServer } from "../helpers/server.ts";
import { useServer } from "../helpers/fixture.ts";
import { sleep } from "../helpers/wait.ts";

type Ev = InboxSubscription["inbox"];
const envelopes = (xs: { inbox: Ev }[]) =>
  xs.map((x) => x.inbox).filter((e): e is Extract<Ev, { __typename: "EnvelopeEvent" }> => e.__typename === "EnvelopeEvent");

describe("inbox", () => {
  const server = useServer();

  it("replays the queue in order, then delivers live; acknowledged items are not replayed", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
    for (const t of ["a", "b", "c"]) await sendOpaque(alice, bob.userId, t);
    const ws = openWs(server.url, bob.token);
    try {
      const sub = collect(ws, InboxDocument);
      await sub.until((xs) => envelopes(xs).length === 3);
      expect(envelopes(sub.items).map((e) => unb64(e.envelope.body))).toEqual(["a@1", "b@1", "c@1"]);
      const ids = envelopes(sub.items).map((e) => BigInt(e.id));
      expect([...ids].sort((x, y) => (x < y ? -1 : 1))).toEqual(ids);
      await sendOpaque(alice, bob.userId, "d");
      await sub.until((xs) => envelopes(xs).length === 4);
      expect(unb64(envelopes(sub.items)[3].envelope.body)).toBe("d@1");

      const first = envelopes(sub.items).slice(0, 2).map((e) => e.id);
      expect((await bob.http.request(AckEnvelopesDocument, { ids: first })).ackEnvelopes).toBe(2);
      expect((await bob.http.request(AckEnvelopesDocument, { ids: first })).ackEnvelopes).toBe(0);
      // Someone else's ids acknowledge nothing.
      const rest = envelopes(sub.items).slice(2).map((e) => e.id);
      expect((await alice.http.request(AckEnvelopesDocument, { ids: rest })).ackEnvelopes).toBe(0);
      sub.stop();

      const again = collect(ws, InboxDocument);
      await again.until((xs) => envelopes(xs).length === 2);
      await sleep(200);
      expect(envelopes(again.items).map((e) => unb64(e.envelope.body))).toEqual(["c@1", "d@1"]);
      again.stop();

      const { inbox: polled } = await bob.http.request(PollInboxDocument, {});
      expect(polled.map((e) => e.__typename === "EnvelopeEvent" && unb64(e.envelope.body))).toEqual(["c@1", "d@1"]);
      const { inbox: after } = await bob.http.request(PollInboxDocument, { after: polled[0].__typename === "EnvelopeEvent" ? polled[0].id : "0", first: 10 });
      expect(after).toHaveLength(1);
      const bad = await bob.http.execute(AckEnvelopesDocument, { ids: ["not-a-number"] });
      expect(bad.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    } finally {
      await ws.dispose();
    }
  });

  it("loses and doubles nothing when sends race the subscribe", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
    const total = 80;
    const sent: string[] = [];
    const sender = (async () => {
      for (let i = 0; i < total; i += 4) {
        const batch = await Promise.all([0, 1, 2, 3].map((k) => sendOpaque(alice, bob.userId, `m${i + k}`)));
        sent.push(...batch.map((b) => b.messageId));
      }
    })();
    // Subscribe (and re-subscribe) while the sends are in flight.
    while (sent.length < 12) await sleep(5);
    const ws = openWs(server.url, bob.token);
    try {
      const early = collect(ws, InboxDocument);
      while (sent.length < 40) await sleep(5);
      const late = collect(ws, InboxDocument);
      await sender;
      for (const sub of [early, late]) {
        await sub.until((xs) => envelopes(xs).length >= total, 30_000, `${total} envelopes`);
        await sleep(300);
        const got = envelopes(sub.items);
        expect(got).toHaveLength(total);
        expect(new Set(got.map((e) => e.id)).size).toBe(total);
        expect(new Set(got.map((e) => e.envelope.messageId))).toEqual(new Set(sent));
      }
      early.stop();
      late.stop();
    } finally {
      await ws.dispose();
    }
  });

  it("tells a device its pre-keys are low on subscribe and when a claim takes it under the mark", async () => {
    const bob = await registerDevice(server.url, { oneTimeKeys: 5 });
    const carol = await registerDevice(server.url, { oneTimeKeys: 21 });
    const claimer = await registerDevice(server.url);
    const wsBob = openWs(server.url, bob.token);
    const wsCarol = openWs(server.url, carol.token);
    try {
      const bobSub = collect(wsBob, InboxDocument);
      const first = await bobSub.until((xs) => xs.length >= 1);
      expect(first[0].inbox).toMatchObject({ __typename: "PreKeysLowEvent", oneTimePreKeys: 5, lowWaterMark: 20 });

      const carolSub = collect(wsCarol, InboxDocument);
      await sleep(300);
      expect(carolSub.items).toHaveLength(0);
      await claimer.http.request(ClaimPreKeyBundlesDocument, { userId: carol.userId });
      expect(carolSub.items.length).toBe(0); // 20 left: not below the mark yet
      await claimer.http.request(ClaimPreKeyBundlesDocument, { userId: carol.userId });
      const low = await carolSub.until((xs) => xs.length >= 1);
      expect(low[0].inbox).toMatchObject({ __typename: "PreKeysLowEvent", oneTimePreKeys: 19 });
      bobSub.stop();
      carolSub.stop();
    } finally {
      await Promise.all([wsBob.dispose(), wsCarol.dispose()]);
    }
  });

  it("queues a device-list change for everyone who talks with the user, and not for strangers", async () => {
    const alice = await registerDevice(server.url, { oneTimeKeys: 30 });
    const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
    const stranger = await registerDevice(server.url, { oneTimeKeys: 30 });
    await sendOpaque(alice, bob.userId, "hello");
    const ws = openWs(server.url, alice.token);
    try {
      const sub = collect(ws, InboxDocument);
      const bob2 = await linkNewDevice(server.url, bob);
      const changed = await sub.until((xs) => xs.some((x) => x.inbox.__typename === "DeviceListChangedEvent"));
      expect(changed.find((x) => x.inbox.__typename === "DeviceListChangedEvent")!.inbox).toMatchObject({ userId: bob.userId });
      await sendOpaque(alice, bob.userId, "to both");
      const queue = server.app.prisma.inboxItem;
      expect(await queue.count({ where: { userId: bob.userId, deviceId: bob2.deviceId, kind: "envelope" } })).toBe(1);
      await bob.http.request(DeactivateDeviceDocument, { deviceId: bob2.deviceId });
      await sub.until((xs) => xs.filter((x) => x.inbox.__typename === "DeviceListChangedEvent").length === 2);
      // The deactivated device's queue is dropped with it.
      expect(await queue.count({ where: { userId: bob.userId, deviceId: bob2.deviceId } })).toBe(0);
      const { inbox: strangers } = await stranger.http.request(PollInboxDocument, {});
      expect(strangers).toHaveLength(0);
      // Bob's own first device hears it too (its list changed).
      const { inbox: own } = await bob.http.request(PollInboxDocument, {});
      expect(own.filter((e) => e.__typename === "DeviceListChangedEvent").length).toBe(2);
      sub.stop();
    } finally {
      await ws.dispose();
    }
  });
});

describe("a hopelessly slow consumer", () => {
  it("is dropped once its bound is exceeded; its queue stays and a new subscription gets everything", async () => {
    const server = await startServer({ INBOX_BUFFER_LIMIT: "10", MAX_ENVELOPE_BYTES: String(1024 * 1024) });
    let raw: WebSocket | undefined;
    class Grab extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        raw = this; // eslint-disable-line @typescript-eslint/no-this-alias
      }
    }
    try {
      const alice = await registerDevice(server.url);
      const bob = await registerDevice(server.url, { oneTimeKeys: 30 });
      const slow = createClient({
        url: wsUrl(server.url),
        webSocketImpl: Grab,
        connectionParams: { authorization: `Bearer ${bob.token}` },
        retryAttempts: 0,
      });
      const sub = collect(slow, InboxDocument);
      await sendOpaque(alice, bob.userId, "first");
      await sub.until((xs) => envelopes(xs).length === 1);
      // Bob stops reading: TCP buffers fill, then the server's feed for this subscription.
      (raw as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      // About 20 MB in all, more than the TCP buffers between the two ends hold. Sent through the messages service
      // in-process (the same code sendMessage runs) to spare 20 MB of JSON over HTTP on a loaded machine.
      const total = 20;
      for (let i = 0; i < total; i++) {
        const input = await opaqueInput(alice, bob.userId, `${i}:${"x".repeat(1000_000)}`);
        await server.app.services.messages.send(alice.address, {
          ...input,
          recipientUserId: String(input.recipientUserId),
          clientMessageId: String(input.clientMessageId),
          envelopes: input.envelopes.map((e) => ({ ...e, body: new Uint8Array(Buffer.from(e.body, "base64")) })),
          syncEnvelopes: null,
        });
      }
      await sleep(500);
      (raw as unknown as { _socket: { resume(): void } })._socket.resume();
      await sub.until(() => false, 20_000).catch(() => {});
      expect(sub.errors.length + (sub.completed ? 1 : 0)).toBeGreaterThan(0);
      expect(envelopes(sub.items).length).toBeLessThan(total + 1);
      await slow.dispose();

      const ws = openWs(server.url, bob.token);
      try {
        const again = collect(ws, InboxDocument);
        await again.until((xs) => envelopes(xs).length === total + 1, 30_000, "the whole queue");
        again.stop();
      } finally {
        await ws.dispose();
      }
    } finally {
      await server.close();
    }
  }, 180_000);
});

describe("the subscriber feed", () => {
  it("ends a consumer that falls more than its bound behind, keeping nothing", async () => {
    const feed = new Feed<number>(3);
    for (let i = 0; i < 3; i++) feed.push(i);
    feed.push(3);
    await expect(feed.next()).rejects.toMatchObject({ code: "LIMIT_EXCEEDED" });
    expect(await feed.next()).toEqual({ value: undefined, done: true });
  });

  it("returns at once while waiting for an event, and runs its cleanup", async () => {
    const feed = new Feed<number>(10);
    let cleaned = false;
    feed.onClose(() => (cleaned = true));
    const pending = feed.next();
    await feed.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(cleaned).toBe(true);
  });
});
