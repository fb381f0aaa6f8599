// Live-only sends (SendMessageInput.online, used for call signaling): delivered to the devices connected at that
// moment, the sender's sync copies included; nothing stored or queued, nothing replayed on reconnect; the device-set
// checks still refuse a wrong envelope set; acknowledging a live envelope is a harmless no-op.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckEnvelopesDocument, InboxDocument, PollInboxDocument, SendMessageDocument, type InboxSubscription } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { collect, type Collector } from "../helpers/live.ts";
import { sleep } from "../helpers/wait.ts";
import { opaqueInput, sendOpaque, unb64 } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

type Ev = InboxSubscription["inbox"];
type Live = Extract<Ev, { __typename: "LiveEnvelopeEvent" }>;
const lives = (xs: { inbox: Ev }[]) => xs.map((x) => x.inbox).filter((e): e is Live => e.__typename === "LiveEnvelopeEvent");
const queued = (xs: { inbox: Ev }[]) => xs.map((x) => x.inbox).filter((e) => e.__typename === "EnvelopeEvent");

describe("sendMessage online: true", () => {
  let server: TestServer;
  let alice: TestDevice, alice2: TestDevice, bob: TestDevice, bob2: TestDevice;
  const sockets: ReturnType<typeof openWs>[] = [];
  const inbox = (d: TestDevice): Collector<InboxSubscription> => {
    const ws = openWs(server.url, d.token);
    sockets.push(ws);
    return collect(ws, InboxDocument);
  };
  const rows = async () => ({
    messages: await server.app.prisma.message.count(),
    items: await server.app.prisma.inboxItem.count(),
    conversations: await server.app.prisma.conversation.count(),
  });

  beforeAll(async () => {
    server = await startServer();
    alice = await registerDevice(server.url);
    alice2 = await linkNewDevice(server.url, alice);
    bob = await registerDevice(server.url);
    bob2 = await linkNewDevice(server.url, bob);
  });
  afterAll(async () => {
    for (const ws of sockets) await ws.dispose();
    await server.close();
  });

  it("reaches the recipient's connected devices and the sender's other devices, and stores nothing", async () => {
    const [b1, b2, a2] = [inbox(bob), inbox(bob2), inbox(alice2)];
    // A queued marker proves each subscription is live before the online send.
    await sendOpaque(alice, bob.userId, "marker");
    await Promise.all([b1, b2, a2].map((s) => s.until((xs) => queued(xs).length > 0)));
    const before = await rows();
    const sent = await sendOpaque(alice, bob.userId, "offer", { online: true, messageType: "CALL" });
    await Promise.all([b1, b2, a2].map((s) => s.until((xs) => lives(xs).length === 1, 10_000, "the live envelope")));
    expect(unb64(lives(b1.items)[0].envelope.body)).toBe("offer@1");
    expect(unb64(lives(b2.items)[0].envelope.body)).toBe("offer@2");
    expect(unb64(lives(a2.items)[0].envelope.body)).toBe("offer@2");
    for (const s of [b1, b2, a2]) {
      const e = lives(s.items)[0];
      expect(e.id).toMatch(/^live:/);
      expect(e.envelope).toMatchObject({ messageId: sent.messageId, senderUserId: alice.userId, senderDeviceId: 1, type: 2 });
    }
    expect(await rows()).toEqual(before);
    expect(await server.app.prisma.message.findUnique({ where: { id: sent.messageId } })).toBeNull();
    // Acknowledging a live envelope does nothing, and does not spoil the real ids acknowledged with it.
    const real = queued(b1.items)[0] as Extract<Ev, { __typename: "EnvelopeEvent" }>;
    const { ackEnvelopes } = await bob.http.request(AckEnvelopesDocument, { ids: [lives(b1.items)[0].id, real.id] });
    expect(ackEnvelopes).toBe(1);
    for (const s of [b1, b2, a2]) s.stop();
  });

  it("is never delivered to a device that connects later, nor kept for polling", async () => {
    const b1 = inbox(bob);
    await sendOpaque(alice, bob.userId, "marker 2");
    await b1.until((xs) => queued(xs).length > 0);
    // bob2 is offline for this one.
    await sendOpaque(alice, bob.userId, "while offline", { online: true, messageType: "CALL" });
    await b1.until((xs) => lives(xs).length === 1);
    await sendOpaque(alice, bob.userId, "after");
    const b2 = inbox(bob2);
    await b2.until((xs) => queued(xs).some((e) => e.__typename === "EnvelopeEvent" && unb64(e.envelope.body) === "after@2"));
    await sleep(300);
    expect(lives(b2.items)).toEqual([]);
    const { inbox: polled } = await bob2.http.request(PollInboxDocument, { first: 100 });
    expect(polled.some((e) => e.__typename === "LiveEnvelopeEvent")).toBe(false);
    expect(polled.filter((e) => e.__typename === "EnvelopeEvent").map((e) => e.__typename === "EnvelopeEvent" && unb64(e.envelope.body))).not.toContain(
      "while offline@2",
    );
    b1.stop();
    b2.stop();
  });

  it("still runs the device-set checks", async () => {
    const refused = async (mutate: (i: Awaited<ReturnType<typeof opaqueInput>>) => void) => {
      const input = await opaqueInput(alice, bob.userId, "x", { online: true, messageType: "CALL" });
      mutate(input);
      const err = await alice.http.request(SendMessageDocument, { input }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GraphQLRequestError);
      return err as GraphQLRequestError;
    };
    const missing = await refused((i) => void (i.envelopes = i.envelopes.slice(0, 1)));
    expect(missing.code).toBe("MISMATCHED_DEVICES");
    expect(missing.extensions).toMatchObject({ userId: bob.userId, missingDevices: [2], extraDevices: [] });
    const stale = await refused((i) => void (i.envelopes[1].registrationId = (i.envelopes[1].registrationId + 1) % 0x3fff));
    expect(stale.code).toBe("STALE_DEVICES");
    expect(stale.extensions).toMatchObject({ userId: bob.userId, staleDevices: [2] });
    const noSync = await refused((i) => void (i.syncEnvelopes = null));
    expect(noSync.code).toBe("MISMATCHED_DEVICES");
    expect(noSync.extensions).toMatchObject({ userId: alice.userId, missingDevices: [2] });
  });
});
