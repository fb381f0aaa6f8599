// sendMessage: device-set checks, sync copies, Note to Self, idempotency, atomicity, bounds, and real Signal
// ciphertext end to end through the inbox.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openWs, GraphQLRequestError } from "../../src/client/transport.ts";
import { InboxDocument, PollInboxDocument, SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { linkNewDevice, registerDevice, startSessions } from "../helpers/accounts.ts";
import { collect } from "../helpers/live.ts";
import { b64, opaqueInput, sendOpaque, unb64 } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const text = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

async function rejection(p: Promise<unknown>): Promise<GraphQLRequestError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GraphQLRequestError) return err;
    throw err;
  }
  throw new Error("expected the request to fail");
}

describe("sendMessage", () => {
  let server: TestServer;
  const counts = async () => {
    const p = server.app.prisma;
    return { messages: await p.message.count(), items: await p.inboxItem.count() };
  };
  beforeAll(async () => {
    server = await startServer({ MAX_ENVELOPE_BYTES: "4096" });
  });
  afterAll(() => server.close());

  it("stores one envelope per recipient device plus sync copies, and each device polls only its own", async () => {
    const alice = await registerDevice(server.url);
    const alice2 = await linkNewDevice(server.url, alice);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const sent = await sendOpaque(alice, bob.userId, "hi");
    expect(sent.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(sent.serverTimestamp)).not.toBeNaN();

    for (const [device, expected] of [
      [bob, "hi@1"],
      [bob2, "hi@2"],
      [alice2, "hi@2"],
    ] as const) {
      const { inbox } = await device.http.request(PollInboxDocument, {});
      const envelopes = inbox.filter((e) => e.__typename === "EnvelopeEvent");
      expect(envelopes).toHaveLength(1);
      const env = envelopes[0].__typename === "EnvelopeEvent" ? envelopes[0].envelope : null;
      expect(env).toMatchObject({ messageId: sent.messageId, senderUserId: alice.userId, senderDeviceId: 1, type: 2 });
      expect(unb64(env!.body)).toBe(expected);
      expect(env!.serverTimestamp).toBe(sent.serverTimestamp);
    }
    const { inbox: own } = await alice.http.request(PollInboxDocument, {});
    expect(own.filter((e) => e.__typename === "EnvelopeEvent")).toHaveLength(0);
  });

  it("refuses a wrong device set with MISMATCHED_DEVICES or STALE_DEVICES and stores nothing", async () => {
    const alice = await registerDevice(server.url);
    const alice2 = await linkNewDevice(server.url, alice);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const good = await opaqueInput(alice, bob.userId, "x");
    const before = await counts();

    const missing = await rejection(
      alice.http.request(SendMessageDocument, { input: { ...good, envelopes: good.envelopes.slice(0, 1) } }),
    );
    expect(missing.code).toBe("MISMATCHED_DEVICES");
    expect(missing.extensions).toMatchObject({ userId: bob.userId, missingDevices: [bob2.deviceId], extraDevices: [] });

    const extra = await rejection(
      alice.http.request(SendMessageDocument, {
        input: { ...good, envelopes: [...good.envelopes, { ...good.envelopes[0], deviceId: 9 }] },
      }),
    );
    expect(extra.code).toBe("MISMATCHED_DEVICES");
    expect(extra.extensions).toMatchObject({ userId: bob.userId, missingDevices: [], extraDevices: [9] });

    const noSync = await rejection(alice.http.request(SendMessageDocument, { input: { ...good, syncEnvelopes: null } }));
    expect(noSync.code).toBe("MISMATCHED_DEVICES");
    expect(noSync.extensions).toMatchObject({ userId: alice.userId, missingDevices: [alice2.deviceId], extraDevices: [] });

    const stale = await rejection(
      alice.http.request(SendMessageDocument, {
        input: {
          ...good,
          envelopes: good.envelopes.map((e) => (e.deviceId === 2 ? { ...e, registrationId: (e.registrationId % 16000) + 1 } : e)),
        },
      }),
    );
    expect(stale.code).toBe("STALE_DEVICES");
    expect(stale.extensions).toMatchObject({ userId: bob.userId, staleDevices: [2] });

    const unknown = await rejection(
      alice.http.request(SendMessageDocument, {
        input: { ...good, recipientUserId: "00000000-0000-4000-8000-000000000000" },
      }),
    );
    expect(unknown.code).toBe("NOT_FOUND");
    expect(await counts()).toEqual(before);
  });

  it("is idempotent on (sender device, clientMessageId), also when the same send races itself", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const input = await opaqueInput(alice, bob.userId, "once");
    const first = await alice.http.request(SendMessageDocument, { input });
    const before = await counts();
    const again = await alice.http.request(SendMessageDocument, { input });
    expect(again.sendMessage).toEqual(first.sendMessage);
    expect(await counts()).toEqual(before);
    // A retry after the recipient's device list changed still gets the stored answer, not MISMATCHED_DEVICES.
    await linkNewDevice(server.url, bob);
    const late = await alice.http.request(SendMessageDocument, { input });
    expect(late.sendMessage).toEqual(first.sendMessage);

    const raced = await opaqueInput(alice, bob.userId, "raced");
    const answers = await Promise.all([1, 2, 3, 4].map(() => alice.http.request(SendMessageDocument, { input: raced })));
    expect(new Set(answers.map((a) => a.sendMessage.messageId)).size).toBe(1);
    const { inbox } = await bob.http.request(PollInboxDocument, {});
    expect(inbox.filter((e) => e.__typename === "EnvelopeEvent")).toHaveLength(2);
  });

  it("a replay of a clientMessageId with another body, type, timer or recipient is a CONFLICT and stores nothing", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    const carol = await registerDevice(server.url);
    const input = await opaqueInput(alice, bob.userId, "original");
    const first = await alice.http.request(SendMessageDocument, { input });
    const before = await counts();
    const same = { ...input, clientMessageId: input.clientMessageId };
    const other = await opaqueInput(alice, bob.userId, "forged");
    const toCarol = await opaqueInput(alice, carol.userId, "original");
    const variants = {
      body: { ...same, envelopes: other.envelopes },
      "one envelope's body": { ...same, envelopes: [input.envelopes[0], other.envelopes[1]] },
      "registration id": { ...same, envelopes: input.envelopes.map((e, i) => (i === 0 ? { ...e, registrationId: e.registrationId + 1 } : e)) },
      type: { ...same, messageType: "MEDIA" as const },
      timer: { ...same, expiresInSeconds: 60 },
      recipient: { ...toCarol, clientMessageId: input.clientMessageId },
    };
    for (const [what, v] of Object.entries(variants)) {
      const err = await rejection(alice.http.request(SendMessageDocument, { input: v }));
      expect(err.code, what).toBe("CONFLICT");
      expect(err.extensions.messageId, what).toBe(first.sendMessage.messageId);
    }
    expect(await counts()).toEqual(before);
    // The same send, its envelopes listed in another order, is still the same send: the first answer.
    const reordered = await alice.http.request(SendMessageDocument, { input: { ...same, envelopes: [...input.envelopes].reverse() } });
    expect(reordered.sendMessage).toEqual(first.sendMessage);
    expect(await counts()).toEqual(before);
    const { inbox } = await bob2.http.request(PollInboxDocument, {});
    expect(inbox.flatMap((e) => (e.__typename === "EnvelopeEvent" ? [unb64(e.envelope.body)] : []))).toEqual([`original@${bob2.deviceId}`]);
  });

  it("Note to Self: envelopes go to your other devices and the message is kept for your history", async () => {
    const me = await registerDevice(server.url);
    const lonely = await sendOpaque(me, me.userId, "note"); // no other device: no envelope, still a message
    expect(lonely.input.envelopes).toHaveLength(0);
    const me2 = await linkNewDevice(server.url, me);
    const sent = await sendOpaque(me, me.userId, "note2");
    expect(sent.input.envelopes.map((e) => e.deviceId)).toEqual([me2.deviceId]);
    const { inbox } = await me2.http.request(PollInboxDocument, {});
    const env = inbox.filter((e) => e.__typename === "EnvelopeEvent");
    expect(env.map((e) => e.__typename === "EnvelopeEvent" && unb64(e.envelope.body))).toEqual(["note2@2"]);

    const withSync = await rejection(
      me.http.request(SendMessageDocument, { input: { ...sent.input, clientMessageId: "x1", syncEnvelopes: sent.input.envelopes } }),
    );
    expect(withSync.code).toBe("MISMATCHED_DEVICES");
    const p = server.app.prisma;
    expect(await p.message.count({ where: { senderUserId: me.userId, recipientUserId: me.userId } })).toBe(2);
  });

  it("bounds: body size (configurable), envelope count, clientMessageId length, unauthenticated", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const good = await opaqueInput(alice, bob.userId, "x");
    const big = Buffer.alloc(4097, 7).toString("base64");
    const tooBig = await rejection(
      alice.http.request(SendMessageDocument, { input: { ...good, envelopes: [{ ...good.envelopes[0], body: big }] } }),
    );
    expect(tooBig.code).toBe("LIMIT_EXCEEDED");
    const many = Array.from({ length: 101 }, (_, i) => ({ ...good.envelopes[0], deviceId: (i % 127) + 1 }));
    expect((await rejection(alice.http.request(SendMessageDocument, { input: { ...good, envelopes: many } }))).code).toBe(
      "BAD_USER_INPUT",
    );
    const seven = Array.from({ length: 7 }, (_, i) => ({ ...good.envelopes[0], deviceId: i + 1 }));
    expect((await rejection(alice.http.request(SendMessageDocument, { input: { ...good, envelopes: seven } }))).code).toBe(
      "BAD_USER_INPUT",
    );
    const longId = "x".repeat(65);
    expect(
      (await rejection(alice.http.request(SendMessageDocument, { input: { ...good, clientMessageId: longId } }))).code,
    ).toBe("BAD_USER_INPUT");
    expect(
      (await rejection(alice.http.request(SendMessageDocument, { input: { ...good, envelopes: [{ ...good.envelopes[0], body: "!!" }] } }))).code,
    ).toBe("BAD_USER_INPUT");
    expect((await rejection(server.http().request(SendMessageDocument, { input: good }))).code).toBe("UNAUTHENTICATED");
    const { inbox } = await bob.http.request(PollInboxDocument, {});
    expect(inbox).toHaveLength(0);
  });

  it("carries real libsignal ciphertext that the recipient decrypts from its live inbox", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const bob2 = await linkNewDevice(server.url, bob);
    expect(await startSessions(alice, bob.userId)).toBe(2);
    const clients = [bob, bob2].map((d) => openWs(server.url, d.token));
    const inboxes = clients.map((c) => collect(c, InboxDocument));
    try {
      for (const [i, words] of ["first secret", "second secret"].entries()) {
        const envelopes = [];
        for (const d of [bob, bob2]) {
          const c = await alice.signal.encrypt(alice.address, d.address, text(`${words} for ${d.deviceId}`));
          envelopes.push({ deviceId: d.deviceId, registrationId: d.signal.registrationId, type: c.type, body: c.body });
        }
        await alice.http.request(SendMessageDocument, {
          input: { recipientUserId: bob.userId, clientMessageId: `m${i}`, messageType: "TEXT", envelopes },
        });
      }
      for (const [i, d] of [bob, bob2].entries()) {
        const events = await inboxes[i].until((xs) => xs.filter((x) => x.inbox.__typename === "EnvelopeEvent").length >= 2);
        const plain = [];
        for (const e of events) {
          if (e.inbox.__typename !== "EnvelopeEvent") continue;
          const env = e.inbox.envelope;
          expect(env.body).not.toContain(b64("secret"));
          plain.push(Buffer.from(await d.signal.decrypt(d.address, alice.address, env.type, env.body)).toString());
        }
        expect(plain).toEqual([`first secret for ${d.deviceId}`, `second secret for ${d.deviceId}`]);
      }
    } finally {
      inboxes.forEach((s) => s.stop());
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
});
