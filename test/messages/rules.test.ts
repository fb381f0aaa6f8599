// Unit tests of 1:1 messaging's pure rules (src/messages/rules.ts): the device-set checks (missing, extra, stale),
// send input bounds, Note to Self, self-destruct and delete-for-everyone times, status and cursors.
import { describe, expect, it } from "vitest";
import {
  checkDeleteForEveryone,
  checkDeviceSet,
  checkRecipients,
  conversationCursor,
  cursorSeq,
  legacySendDigest,
  metadataCutoffs,
  pair,
  parseConversationCursor,
  prepareSend,
  replayAnswer,
  selfDestructAt,
  sendDigest,
  statusOf,
  MAX_EXPIRES_IN_SECONDS,
  type EnvelopeInput,
} from "../../src/messages/rules.ts";
import { refusal } from "../helpers/refusal.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";
const limits = { maxDevicesPerUser: 5, maxEnvelopeBytes: 100 };
const env = (deviceId: number, registrationId = deviceId * 10, body = new Uint8Array([1])): EnvelopeInput => ({
  deviceId,
  registrationId,
  type: 2,
  body,
});
const send = (over: Partial<Parameters<typeof prepareSend>[1]> = {}) =>
  prepareSend({ userId: A, deviceId: 1 }, { recipientUserId: B, clientMessageId: "c1", messageType: "TEXT", envelopes: [env(1)], ...over }, limits);

describe("device-set checks", () => {
  const devices = [
    { deviceId: 1, registrationId: 10 },
    { deviceId: 2, registrationId: 20 },
  ];

  it("accepts exactly one envelope per active device with its registration id", () => {
    expect(refusal(() => checkDeviceSet(B, devices, [env(2), env(1)]))).toBeNull();
  });

  it("names missing and extra devices, sorted, with MISMATCHED_DEVICES", () => {
    const r = refusal(() => checkDeviceSet(B, devices, [env(3), env(2), env(5)]));
    expect(r?.code).toBe("MISMATCHED_DEVICES");
    expect(r?.details).toEqual({ userId: B, missingDevices: [1], extraDevices: [3, 5] });
  });

  it("refuses as many envelopes as devices when one device has two and another none", () => {
    const r = refusal(() => checkDeviceSet(B, devices, [env(1), env(1)]));
    expect(r?.code).toBe("MISMATCHED_DEVICES");
    expect(r?.details).toEqual({ userId: B, missingDevices: [2], extraDevices: [] });
  });

  it("names re-registered devices with STALE_DEVICES once the set matches", () => {
    const r = refusal(() => checkDeviceSet(B, devices, [env(1, 11), env(2, 20)]));
    expect(r?.code).toBe("STALE_DEVICES");
    expect(r?.details).toEqual({ userId: B, staleDevices: [1] });
  });

  it("checks the recipient's devices and the sync copies against the sender's other devices", () => {
    const all = [
      { userId: B, deviceId: 1, registrationId: 10 },
      { userId: A, deviceId: 1, registrationId: 10 },
      { userId: A, deviceId: 2, registrationId: 20 },
    ];
    expect(refusal(() => checkRecipients(send({ syncEnvelopes: [env(2)] }), all))).toBeNull();
    const r = refusal(() => checkRecipients(send(), all));
    expect(r?.details).toMatchObject({ userId: A, missingDevices: [2] });
    expect(refusal(() => checkRecipients(send(), []))?.code).toBe("NOT_FOUND");
  });

  it("Note to Self: the envelopes go to the sender's other devices and no sync copies are wanted", () => {
    const own = [
      { userId: A, deviceId: 1, registrationId: 10 },
      { userId: A, deviceId: 2, registrationId: 20 },
    ];
    // Ids reach the rules in their canonical spelling (the GraphQL edge lowercases them: test/graphql/canonical-ids).
    const req = send({ recipientUserId: A, envelopes: [env(2)] });
    expect(req.recipient).toBe(A);
    expect(refusal(() => checkRecipients(req, own))).toBeNull();
    expect(refusal(() => checkRecipients({ ...req, sync: [env(2)] }, own))?.code).toBe("MISMATCHED_DEVICES");
  });
});

describe("send input bounds", () => {
  it("bounds the client message id, the timer, the envelope count, size and type, and duplicate devices", () => {
    expect(refusal(() => send({ clientMessageId: "" }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ clientMessageId: "x".repeat(65) }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ expiresInSeconds: 0 }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ expiresInSeconds: MAX_EXPIRES_IN_SECONDS + 1 }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ expiresInSeconds: 1.5 }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ envelopes: [1, 2, 3, 4, 5, 6].map((d) => env(d)) }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ envelopes: [env(1), env(1)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ envelopes: [env(1, 10, new Uint8Array())] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ envelopes: [env(1, 10, new Uint8Array(101))] }))?.code).toBe("LIMIT_EXCEEDED");
    expect(refusal(() => send({ envelopes: [{ ...env(1), type: 256 }] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => send({ syncEnvelopes: [env(2), env(2)] }))?.code).toBe("BAD_USER_INPUT");
    expect(send({ expiresInSeconds: MAX_EXPIRES_IN_SECONDS }).ttl).toBe(MAX_EXPIRES_IN_SECONDS);
  });

  // The schema declares no per-field validators on EnvelopeInput: these are its only bounds.
  it("bounds each envelope's device id (1-127) and registration id (0-16383), in both lists", () => {
    for (const deviceId of [0, -1, 128, 2 ** 31 - 1]) {
      expect(refusal(() => send({ envelopes: [env(deviceId, 10)] }))?.message).toContain("envelopes[0].deviceId must be 1-127");
      expect(refusal(() => send({ syncEnvelopes: [env(deviceId, 10)] }))?.message).toContain("syncEnvelopes[0].deviceId");
    }
    for (const registrationId of [-1, 0x4000, 2 ** 31 - 1]) {
      expect(refusal(() => send({ envelopes: [env(1, registrationId)] }))?.code).toBe("BAD_USER_INPUT");
      expect(refusal(() => send({ syncEnvelopes: [env(2, registrationId)] }))?.message).toContain("registrationId must be 0-16383");
    }
    expect(send({ envelopes: [env(127, 0x3fff)], syncEnvelopes: [env(1, 0)] }).envelopes[0].deviceId).toBe(127);
  });

  // The schema declares no validator on SendMessageInput.recipientUserId either.
  it("refuses a recipient that is not a UUID and answers the canonical spelling of one that is", () => {
    for (const recipientUserId of ["bob", "", `${B}0`, B.replaceAll("-", "")]) {
      expect(refusal(() => send({ recipientUserId }))?.message).toContain("recipientUserId must be a UUID");
    }
    expect(send({ recipientUserId: B.toUpperCase() }).recipient).toBe(B);
  });
});

describe("times, status and cursors", () => {
  const now = new Date("2026-01-01T00:00:00Z");

  it("a self-destruct timer sets the expiry; no timer, no expiry", () => {
    expect(selfDestructAt(now, 30)?.toISOString()).toBe("2026-01-01T00:00:30.000Z");
    expect(selfDestructAt(now, null)).toBeNull();
  });

  it("only the sender deletes for everyone, and only within the window", () => {
    const m = { senderUserId: A, createdAt: new Date(now.getTime() - 60_000) };
    expect(refusal(() => checkDeleteForEveryone(m, { userId: A, deviceId: 1 }, now, 60))).toBeNull();
    expect(refusal(() => checkDeleteForEveryone(m, { userId: A, deviceId: 1 }, now, 59))?.code).toBe("FORBIDDEN");
    expect(refusal(() => checkDeleteForEveryone(m, { userId: B, deviceId: 1 }, now, 600))?.code).toBe("FORBIDDEN");
  });

  it("status is the furthest of sent, delivered, read", () => {
    expect(statusOf({ deliveredAt: null, readAt: null })).toBe("SENT");
    expect(statusOf({ deliveredAt: now, readAt: null })).toBe("DELIVERED");
    expect(statusOf({ deliveredAt: now, readAt: now })).toBe("READ");
  });

  it("a conversation is stored under its users in one order; cursors round-trip and refuse garbage", () => {
    expect(pair(B, A)).toEqual([A, B]);
    expect(pair(A, B)).toEqual([A, B]);
    const c = { id: "5b1f4c1e-0000-4000-8000-000000000001", userA: A, userB: B, createdAt: now, lastMessageAt: now };
    expect(parseConversationCursor(conversationCursor(c))).toEqual({ at: now, id: c.id });
    expect(refusal(() => parseConversationCursor("1_nope"))?.code).toBe("BAD_USER_INPUT");
    expect(cursorSeq("17")).toBe(17n);
    expect(refusal(() => cursorSeq("-1"))?.code).toBe("BAD_USER_INPUT");
  });
});

describe("idempotent replays", () => {
  const first = (digest: Uint8Array | null) => ({ messageId: "m1", serverTimestamp: new Date(0), digest });

  it("the same send, envelopes in any order, gets the first answer; anything else is a CONFLICT", () => {
    const req = send({ envelopes: [env(1), env(2)] });
    const digest = sendDigest(req);
    expect(replayAnswer(send({ envelopes: [env(2), env(1)] }), first(digest))).toEqual({ messageId: "m1", serverTimestamp: new Date(0) });
    for (const other of [
      send({ envelopes: [env(1), env(2, 20, new Uint8Array([2]))] }),
      send({ envelopes: [env(1)] }),
      send({ envelopes: [env(1), env(2)], syncEnvelopes: [env(3)] }),
      send({ envelopes: [env(1), env(2)], messageType: "CALL" }),
      send({ envelopes: [env(1), env(2)], expiresInSeconds: 5 }),
      send({ envelopes: [env(1), env(2)], recipientUserId: A }),
    ]) {
      expect(refusal(() => replayAnswer(other, first(digest)))?.code).toBe("CONFLICT");
    }
  });

  it("a digest stored before digests were versioned still tells a retry from another send", () => {
    const req = send({ envelopes: [env(1), env(2)] });
    const legacy = legacySendDigest(req);
    expect(legacy).toHaveLength(32);
    expect(sendDigest(req)).toHaveLength(33);
    expect(replayAnswer(send({ envelopes: [env(2), env(1)] }), first(legacy)).messageId).toBe("m1");
    const other = send({ envelopes: [env(1), env(2, 20, new Uint8Array([2]))] });
    expect(refusal(() => replayAnswer(other, first(legacy)))?.code).toBe("CONFLICT");
  });

  it("a message stored before digests were kept answers as before", () => {
    expect(replayAnswer(send(), first(null)).messageId).toBe("m1");
  });
});

describe("metadata retention cutoffs", () => {
  const now = new Date("2026-12-10T00:00:00Z");
  const ago = (s: number) => new Date(now.getTime() - s * 1000);
  it("keeps a row for the retention after its last change, and never inside the delete-for-everyone window", () => {
    expect(metadataCutoffs(now, { metadataRetentionSeconds: 86_400, deleteForEveryoneWindowSeconds: 3_600 })).toEqual({
      created: ago(86_400),
      changed: ago(86_400),
    });
    expect(metadataCutoffs(now, { metadataRetentionSeconds: 60, deleteForEveryoneWindowSeconds: 3_600 })).toEqual({
      created: ago(3_600),
      changed: ago(60),
    });
  });
});
