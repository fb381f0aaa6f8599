// Hostile input, table-driven: every operation sent malformed, oversized, wrongly typed, foreign-owned and replayed
// input gets a clear extensions.code (never INTERNAL_SERVER_ERROR, never a 5xx) and leaves every table exactly as it
// was (row counts and checksums over SQL). Then the authorization matrix: every operation x (no token, wrong token,
// deactivated device, other user / non-participant), checked against the schema so no operation is left out.
import { randomUUID } from "node:crypto";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import * as ops from "../../src/client/generated/graphql.ts";
import { openWs, queryText } from "../../src/client/transport.ts";
import { schema } from "../../src/graphql/index.ts";
import { linkNewDevice, registerDevice, uniqueUsername, type TestDevice } from "../helpers/accounts.ts";
import { postRaw } from "../helpers/graphql.ts";
import { EventFeed, mlsMember, type MlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { MlsGroupManager } from "../../src/client/mls/groups.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { openSnapshotter, type Snapshot } from "../helpers/snapshot.ts";
import { Subscriber } from "../push/fake-browser.ts";
import { b64 } from "../../src/client/base64.ts";

type Vars = Record<string, unknown>;
type Expect = string | { data: unknown } | (string | { data: unknown })[];
interface Case {
  name: string;
  as: () => string | null;
  op: TypedDocumentNode<unknown, never> | string;
  vars: () => Vars;
  expect: Expect;
}

const junk = (n: number, first = 0x09) => b64(new Uint8Array(n).map((_, i) => (i === 0 ? first : (i * 37) & 0xff)));

describe("hostile input and authorization", () => {
  let server: TestServer;
  let snap: Awaited<ReturnType<typeof openSnapshotter>>;
  let alice: TestDevice, alice2: TestDevice, bob: TestDevice, mallory: TestDevice;
  let deadToken: string;
  let aliceUsername: string;
  let usedLink: string;
  let sent: Awaited<ReturnType<typeof sendOpaque>>;
  let bobEnvelopeIds: string[];
  let conversationId: string;
  let fresh: SignalDevice;
  let owner: MlsMember, member: MlsMember;
  let groupId: string;
  let commit: Awaited<ReturnType<MlsMember["mls"]["prepareCommit"]>>;
  let keyPackage: string;
  let memberEventId: string;
  let freshKeys: Awaited<ReturnType<SignalDevice["registrationKeys"]>>;
  let malloryKeys: { signed: { keyId: number; publicKey: string; signature: string }; kyber: { keyId: number; publicKey: string; signature: string } };

  beforeAll(async () => {
    // No retention sweep during the test: "every table unchanged" compares whole-table snapshots.
    server = await startServer({ MAX_ENVELOPE_BYTES: "4096", SWEEP_INTERVAL_MS: "3600000" });
    snap = await openSnapshotter(server);
    aliceUsername = uniqueUsername("alice");
    alice = await registerDevice(server.url, { username: aliceUsername });
    alice2 = await linkNewDevice(server.url, alice);
    const alice3 = await linkNewDevice(server.url, alice);
    await alice.http.request(ops.DeactivateDeviceDocument, { deviceId: alice3.deviceId });
    deadToken = alice3.token;
    const link = await alice.http.request(ops.CreateDeviceLinkDocument);
    usedLink = link.createDeviceLink.token;
    const fill = await SignalDevice.open(new MemoryKeyValueStore());
    const filled = await server.http().request(ops.LinkDeviceDocument, {
      input: { linkToken: usedLink, keys: await fill.registrationKeys(0) },
    });
    await alice.http.request(ops.DeactivateDeviceDocument, { deviceId: filled.linkDevice.deviceId });
    bob = await registerDevice(server.url);
    mallory = await registerDevice(server.url);
    sent = await sendOpaque(alice, bob.userId, "hello");
    const { inbox } = await bob.http.request(ops.PollInboxDocument, {});
    bobEnvelopeIds = inbox.flatMap((e) => (e.__typename === "EnvelopeEvent" ? [e.id] : []));
    conversationId = inbox.flatMap((e) => (e.__typename === "EnvelopeEvent" ? [e.envelope.conversationId] : []))[0];
    expect(bobEnvelopeIds.length).toBe(1);
    fresh = await SignalDevice.open(new MemoryKeyValueStore());
    freshKeys = await fresh.registrationKeys(2);
    malloryKeys = { signed: await mallory.signal.rotateSignedPreKey(), kyber: await mallory.signal.rotateLastResortKyberPreKey() };
    // A real MLS group of two that mallory is not in.
    owner = await mlsMember(server.url);
    member = await mlsMember(server.url);
    groupId = await owner.mls.createGroup({ name: "private", memberUserIds: [member.userId] });
    commit = await owner.mls.prepareCommit(groupId, { proposals: [] });
    keyPackage = Buffer.from((await owner.mls.keyPackages.generate()).encoded).toString("base64");
    // A real event of that group, unacknowledged by its member: what another user's ackGroupEvents names.
    const { pendingGroupEvents } = await member.http.request(ops.PendingGroupEventsDocument, { groupId });
    memberEventId = pendingGroupEvents[0].id;
  }, 180_000); // a dozen registrations with real keys and an MLS group, on a loaded machine
  afterAll(async () => {
    await snap?.close();
    await server?.close();
  });

  async function run(c: { as: () => string | null; op: Case["op"]; vars: () => Vars }) {
    const query = typeof c.op === "string" ? c.op : queryText(c.op);
    return postRaw(server.url, { query, variables: c.vars() }, c.as());
  }

  function check(name: string, r: Awaited<ReturnType<typeof run>>, expected: Expect) {
    expect(r.status, name).toBeLessThan(500);
    const codes = (r.errors ?? []).map((e) => e.extensions?.code);
    expect(codes, name).not.toContain("INTERNAL_SERVER_ERROR");
    const allowed = [expected].flat();
    const got = codes.length ? codes[0] : { data: r.data };
    const ok = allowed.some((a) => (typeof a === "string" ? a === got : JSON.stringify(a) === JSON.stringify(got)));
    expect(ok, `${name}: expected ${JSON.stringify(allowed)}, got ${JSON.stringify(r.errors ?? r.data)}`).toBe(true);
  }

  const A = () => alice.token;
  const M = () => mallory.token;
  const anon = () => null;
  const keys = (over: Vars = {}) => ({ ...freshKeys, ...over });
  const pushKeys = new Subscriber().keys();
  const sendInput = (over: Vars = {}) => ({ ...sent.input, clientMessageId: randomUUID(), ...over });
  const env0 = () => (sent.input.envelopes as Vars[])[0];

  const cases = (): Case[] => [
    // registerAccount
    { name: "register: identityKey not base64", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ identityKey: "not base64!" }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: identityKey invalid Signal bytes", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ identityKey: junk(33) }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: identityKey 1 MB", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ identityKey: junk(1 << 20, 5) }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: signed pre-key signed by another identity", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ signedPreKey: malloryKeys.signed }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: Kyber key that is an EC key", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ lastResortKyberPreKey: { ...freshKeys.signedPreKey } }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: Kyber key of junk", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ lastResortKyberPreKey: { ...freshKeys.lastResortKyberPreKey, publicKey: junk(1569, 8) } }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: registrationId a string", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ registrationId: "12" }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: registrationId out of range", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ registrationId: 99_999 }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: 101 one-time pre-keys", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ oneTimePreKeys: Array.from({ length: 101 }, (_, i) => ({ ...freshKeys.oneTimePreKeys![0], keyId: 1000 + i })) }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: 20,000 one-time pre-keys", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ oneTimePreKeys: Array.from({ length: 20_000 }, (_, i) => ({ keyId: i, publicKey: "AA==" })) }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: the same one-time key id twice", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ oneTimePreKeys: [freshKeys.oneTimePreKeys![0], freshKeys.oneTimePreKeys![0]] }) } }), expect: "BAD_USER_INPUT" },
    { name: "register: username of 10,000 characters", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { username: "a".repeat(10_000), keys: keys() } }), expect: "BAD_USER_INPUT" },
    { name: "register: username with NUL and emoji", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { username: "al\u0000ice🙂", keys: keys() } }), expect: "BAD_USER_INPUT" },
    { name: "register: replayed (taken) username", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: { username: aliceUsername.toUpperCase(), keys: keys() } }), expect: "CONFLICT" },
    { name: "register: keys missing", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: {} }), expect: "BAD_USER_INPUT" },
    { name: "register: input is a list", as: anon, op: ops.RegisterAccountDocument, vars: () => ({ input: [keys()] }), expect: "BAD_USER_INPUT" },
    // linkDevice
    { name: "link: unknown link token", as: anon, op: ops.LinkDeviceDocument, vars: () => ({ input: { linkToken: "vgl_nope", keys: keys() } }), expect: "FORBIDDEN" },
    { name: "link: replayed (used) link token", as: anon, op: ops.LinkDeviceDocument, vars: () => ({ input: { linkToken: usedLink, keys: keys() } }), expect: "FORBIDDEN" },
    { name: "link: link token of 100 KB", as: anon, op: ops.LinkDeviceDocument, vars: () => ({ input: { linkToken: "x".repeat(100_000), keys: keys() } }), expect: "BAD_USER_INPUT" },
    // uploadPreKeys / rotations
    { name: "upload: replayed key id", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ ...freshKeys.oneTimePreKeys![0], keyId: 1 }] } }), expect: "CONFLICT" },
    { name: "upload: negative key id", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ ...freshKeys.oneTimePreKeys![0], keyId: -1 }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: key id beyond Int", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ ...freshKeys.oneTimePreKeys![0], keyId: 2 ** 40 }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: 32-byte EC key", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ keyId: 900, publicKey: junk(32, 5) }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: Kyber key signed by another identity", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimeKyberPreKeys: [{ ...malloryKeys.kyber, keyId: 901 }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: base64 cut short (no padding)", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ keyId: 902, publicKey: freshKeys.oneTimePreKeys![0].publicKey.slice(0, -1) }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: base64url alphabet", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ keyId: 904, publicKey: "-_" + freshKeys.oneTimePreKeys![0].publicKey.slice(2) }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: publicKey a number", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ keyId: 903, publicKey: 12345 }] } }), expect: "BAD_USER_INPUT" },
    { name: "upload: 5,000 Kyber keys", as: A, op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimeKyberPreKeys: Array.from({ length: 5_000 }, (_, i) => ({ keyId: i, publicKey: "AA==", signature: "AA==" })) } }), expect: "BAD_USER_INPUT" },
    { name: "rotate signed: bad signature", as: A, op: ops.RotateSignedPreKeyDocument, vars: () => ({ key: malloryKeys.signed }), expect: "BAD_USER_INPUT" },
    { name: "rotate signed: signature 63 bytes", as: A, op: ops.RotateSignedPreKeyDocument, vars: () => ({ key: { ...freshKeys.signedPreKey, signature: junk(63) } }), expect: "BAD_USER_INPUT" },
    { name: "rotate Kyber: an EC key", as: A, op: ops.RotateLastResortKyberPreKeyDocument, vars: () => ({ key: freshKeys.signedPreKey }), expect: "BAD_USER_INPUT" },
    // claims
    { name: "claim: userId not a UUID", as: A, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: "'; DROP TABLE users; --" }), expect: "BAD_USER_INPUT" },
    { name: "claim: unknown user", as: A, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: randomUUID() }), expect: "NOT_FOUND" },
    { name: "claim: device id 0", as: A, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: bob.userId, deviceId: 0 }), expect: "BAD_USER_INPUT" },
    { name: "claim: device id 128 (past libsignal's 127)", as: A, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: bob.userId, deviceId: 128 }), expect: "BAD_USER_INPUT" },
    { name: "claim: a device the user does not have", as: A, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: bob.userId, deviceId: 77 }), expect: "NOT_FOUND" },
    { name: "claim: a deactivated device", as: M, op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: alice.userId, deviceId: 3 }), expect: "NOT_FOUND" },
    // devices
    { name: "deactivate: a device id the caller does not have", as: M, op: ops.DeactivateDeviceDocument, vars: () => ({ deviceId: alice2.deviceId }), expect: "NOT_FOUND" },
    { name: "deactivate: device id 1e9", as: A, op: ops.DeactivateDeviceDocument, vars: () => ({ deviceId: 1e9 }), expect: "BAD_USER_INPUT" },
    { name: "deactivate: already deactivated", as: A, op: ops.DeactivateDeviceDocument, vars: () => ({ deviceId: 3 }), expect: { data: { deactivateDevice: false } } },
    // sendMessage
    { name: "send: recipient not a UUID", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ recipientUserId: "bob" }) }), expect: "BAD_USER_INPUT" },
    { name: "send: unknown recipient", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ recipientUserId: randomUUID() }) }), expect: "NOT_FOUND" },
    { name: "send: body not base64", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: [{ ...env0(), body: "%%%" }] }) }), expect: "BAD_USER_INPUT" },
    { name: "send: body over MAX_ENVELOPE_BYTES", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: [{ ...env0(), body: junk(5000) }] }) }), expect: ["BAD_USER_INPUT", "LIMIT_EXCEEDED"] },
    { name: "send: 1,000 envelopes", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: Array.from({ length: 1000 }, () => env0()) }) }), expect: "BAD_USER_INPUT" },
    { name: "send: unknown message type", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ messageType: "BOGUS" }) }), expect: "BAD_USER_INPUT" },
    { name: "send: envelope for a device the recipient does not have", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: [env0(), { ...env0(), deviceId: 5 }] }) }), expect: "MISMATCHED_DEVICES" },
    { name: "send: sync copy for another user's device", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ syncEnvelopes: [{ ...env0(), deviceId: mallory.deviceId + 40 }] }) }), expect: "MISMATCHED_DEVICES" },
    { name: "send: the same device twice", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: [env0(), env0()] }) }), expect: ["BAD_USER_INPUT", "MISMATCHED_DEVICES"] },
    { name: "send: envelope type 1e6", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ envelopes: [{ ...env0(), type: 1e6 }] }) }), expect: "BAD_USER_INPUT" },
    { name: "send: clientMessageId of 10 KB", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sendInput({ clientMessageId: "c".repeat(10_000) }) }), expect: "BAD_USER_INPUT" },
    { name: "send: replayed clientMessageId answers the first send and stores nothing", as: A, op: ops.SendMessageDocument, vars: () => ({ input: sent.input }), expect: { data: { sendMessage: { messageId: sent.messageId, serverTimestamp: sent.serverTimestamp } } } },
    // queue, receipts, deletion, typing
    { name: "ack: another device's envelope ids", as: M, op: ops.AckEnvelopesDocument, vars: () => ({ ids: bobEnvelopeIds }), expect: { data: { ackEnvelopes: 0 } } },
    { name: "ack: ids that are not queue ids", as: A, op: ops.AckEnvelopesDocument, vars: () => ({ ids: ["abc", "1; DELETE FROM inbox_items"] }), expect: "BAD_USER_INPUT" },
    { name: "ack: 100,000 ids", as: A, op: ops.AckEnvelopesDocument, vars: () => ({ ids: Array.from({ length: 100_000 }, (_, i) => String(i)) }), expect: "BAD_USER_INPUT" },
    { name: "markRead: another conversation's message", as: M, op: ops.MarkReadDocument, vars: () => ({ messageIds: [sent.messageId] }), expect: { data: { markRead: 0 } } },
    { name: "markRead: ids not UUIDs", as: A, op: ops.MarkReadDocument, vars: () => ({ messageIds: ["x"] }), expect: "BAD_USER_INPUT" },
    { name: "delete for everyone: someone else's message", as: M, op: ops.DeleteMessageDocument, vars: () => ({ messageId: sent.messageId, forEveryone: true }), expect: ["NOT_FOUND", "FORBIDDEN"] },
    { name: "delete for everyone: recipient is not the sender", as: () => bob.token, op: ops.DeleteMessageDocument, vars: () => ({ messageId: sent.messageId, forEveryone: true }), expect: "FORBIDDEN" },
    { name: "delete: unknown message", as: A, op: ops.DeleteMessageDocument, vars: () => ({ messageId: randomUUID(), forEveryone: false }), expect: "NOT_FOUND" },
    { name: "typing: a conversation the caller is not in", as: M, op: ops.SetTypingDocument, vars: () => ({ conversationId, isTyping: true }), expect: ["FORBIDDEN", "NOT_FOUND"] },
    { name: "read receipts: a string for a Boolean", as: A, op: ops.SetReadReceiptsDocument, vars: () => ({ enabled: "yes" }), expect: "BAD_USER_INPUT" },
    // queries
    { name: "messages: a conversation the caller is not in", as: M, op: ops.MessagesDocument, vars: () => ({ conversationId }), expect: ["FORBIDDEN", "NOT_FOUND"] },
    { name: "messages: first = -5", as: A, op: ops.MessagesDocument, vars: () => ({ conversationId, first: -5 }), expect: "BAD_USER_INPUT" },
    // Within Int, so GraphQL takes it; the connection clamps it to its page maximum (200) and answers one page.
    { name: "messages: first = 1e9", as: A, op: `query($c: ID!, $f: Int) { messages(conversationId: $c, first: $f) { edges { node { id } } } }`, vars: () => ({ c: conversationId, f: 1e9 }), expect: { data: { messages: { edges: [{ node: { id: sent.messageId } }] } } } },
    { name: "messages: first past Int", as: A, op: ops.MessagesDocument, vars: () => ({ conversationId, first: 2 ** 40 }), expect: "BAD_USER_INPUT" },
    { name: "inbox: after not a queue id", as: A, op: ops.PollInboxDocument, vars: () => ({ after: "zzz" }), expect: "BAD_USER_INPUT" },
    { name: "presence: 10,000 user ids", as: A, op: ops.PresenceDocument, vars: () => ({ userIds: Array.from({ length: 10_000 }, () => randomUUID()) }), expect: "BAD_USER_INPUT" },
    { name: "devices: userId not a UUID", as: A, op: ops.DevicesDocument, vars: () => ({ userId: "1 OR 1=1" }), expect: "BAD_USER_INPUT" },
    { name: "userByUsername: 100 KB", as: A, op: ops.UserByUsernameDocument, vars: () => ({ username: "u".repeat(100_000) }), expect: "BAD_USER_INPUT" },
    // MLS (groups)
    { name: "key packages: junk bytes", as: () => owner.token, op: ops.UploadKeyPackagesDocument, vars: () => ({ keyPackages: [junk(300, 1)] }), expect: "BAD_USER_INPUT" },
    { name: "key packages: another device's (replayed) key package", as: () => member.token, op: ops.UploadKeyPackagesDocument, vars: () => ({ keyPackages: [keyPackage] }), expect: ["BAD_USER_INPUT", "FORBIDDEN"] },
    { name: "claim key packages: 10,000 users", as: A, op: ops.ClaimKeyPackagesDocument, vars: () => ({ userIds: Array.from({ length: 10_000 }, () => randomUUID()) }), expect: "BAD_USER_INPUT" },
    { name: "create group: mlsGroupId of 1 MB", as: () => owner.token, op: ops.CreateGroupDocument, vars: () => ({ input: { mlsGroupId: junk(1 << 20) } }), expect: "BAD_USER_INPUT" },
    { name: "commit: junk MLS bytes", as: () => owner.token, op: ops.CommitGroupDocument, vars: () => ({ input: { ...commit, groupId, commit: junk(200, 0) } }), expect: "BAD_USER_INPUT" },
    { name: "commit: group info in place of the commit", as: () => owner.token, op: ops.CommitGroupDocument, vars: () => ({ input: { ...commit, groupId, commit: commit.groupInfo } }), expect: "BAD_USER_INPUT" },
    { name: "commit: a non-member replays the owner's commit", as: M, op: ops.CommitGroupDocument, vars: () => ({ input: { ...commit, groupId } }), expect: ["FORBIDDEN", "NOT_FOUND"] },
    { name: "group message: a commit in place of an application message", as: () => owner.token, op: ops.SendGroupMessageDocument, vars: () => ({ groupId, message: commit.commit }), expect: "BAD_USER_INPUT" },
    { name: "group message: unknown group", as: () => owner.token, op: ops.SendGroupMessageDocument, vars: () => ({ groupId: randomUUID(), message: commit.commit }), expect: ["NOT_FOUND", "FORBIDDEN", "BAD_USER_INPUT"] },
    { name: "ack group events: ids that are not group event ids", as: () => member.token, op: ops.AckGroupEventsDocument, vars: () => ({ ids: ["123", "g:not-a-group:1"] }), expect: "BAD_USER_INPUT" },
    { name: "ack group events: 1,001 ids (one over the bound)", as: () => member.token, op: ops.AckGroupEventsDocument, vars: () => ({ ids: Array.from({ length: 1_001 }, () => memberEventId) }), expect: "BAD_USER_INPUT" },
    { name: "group: id not a UUID", as: A, op: ops.GroupDocument, vars: () => ({ id: "../../etc/passwd" }), expect: "BAD_USER_INPUT" },
    // documents that are not GraphQL
    { name: "syntax error", as: A, op: "mutation { sendMessage(", vars: () => ({}), expect: ["BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED"] },
    { name: "unknown variable type", as: A, op: "query($x: Nope) { me { deviceId } }", vars: () => ({ x: 1 }), expect: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
    // push registrations (the default allow-list: the browsers' push services)
    { name: "registerPush: endpoint on no allowed host", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "WEB_PUSH", endpoint: "https://169.254.169.254/latest", p256dh: pushKeys.p256dh, auth: pushKeys.auth } }), expect: "BAD_USER_INPUT" },
    { name: "registerPush: http endpoint", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "WEB_PUSH", endpoint: "http://fcm.googleapis.com/x", p256dh: pushKeys.p256dh, auth: pushKeys.auth } }), expect: "BAD_USER_INPUT" },
    { name: "registerPush: 100 KB endpoint", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "WEB_PUSH", endpoint: `https://fcm.googleapis.com/${"x".repeat(100_000)}`, p256dh: pushKeys.p256dh, auth: pushKeys.auth } }), expect: "BAD_USER_INPUT" },
    { name: "registerPush: p256dh of junk", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/x", p256dh: junk(65), auth: pushKeys.auth } }), expect: "BAD_USER_INPUT" },
    { name: "registerPush: unknown gateway", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "GATEWAY", gateway: "evil", token: "t" } }), expect: "BAD_USER_INPUT" },
    { name: "registerPush: unknown kind", as: A, op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "SMS", endpoint: "x" } }), expect: "BAD_USER_INPUT" },
    { name: "blockUser: oneself", as: A, op: ops.BlockUserDocument, vars: () => ({ userId: alice.userId }), expect: "BAD_USER_INPUT" },
    { name: "blockUser: 36 dashes", as: A, op: ops.BlockUserDocument, vars: () => ({ userId: "-".repeat(36) }), expect: "BAD_USER_INPUT" },
    { name: "acceptMessageRequest: unknown user", as: A, op: ops.AcceptMessageRequestDocument, vars: () => ({ userId: randomUUID() }), expect: "NOT_FOUND" },
    { name: "reportMessage: 100 KB reason", as: A, op: ops.ReportMessageDocument, vars: () => ({ messageId: sent.messageId, reason: "x".repeat(100_000) }), expect: "BAD_USER_INPUT" },
    { name: "reportMessage: 100 KB excerpt", as: A, op: ops.ReportMessageDocument, vars: () => ({ messageId: sent.messageId, excerpt: "x".repeat(100_000) }), expect: "BAD_USER_INPUT" },
    { name: "setPresencePrivacy: unknown value", as: A, op: ops.SetPresencePrivacyDocument, vars: () => ({ visibility: "FRIENDS" }), expect: "BAD_USER_INPUT" },
    { name: "attachment of 0 bytes", as: A, op: ops.CreateAttachmentUploadDocument, vars: () => ({ input: { size: 0 } }), expect: "BAD_USER_INPUT" },
    { name: "attachment over MAX_ATTACHMENT_BYTES", as: A, op: ops.CreateAttachmentUploadDocument, vars: () => ({ input: { size: 2 ** 31 - 1 } }), expect: "LIMIT_EXCEEDED" },
    { name: "attachment size past Int", as: A, op: ops.CreateAttachmentUploadDocument, vars: () => ({ input: { size: 2 ** 40 } }), expect: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
    { name: "attachment content type not a type", as: A, op: ops.CreateAttachmentUploadDocument, vars: () => ({ input: { size: 10, contentType: "x".repeat(5000) } }), expect: "BAD_USER_INPUT" },
  ];

  it("refuses every hostile input with a clear code and leaves every table unchanged", async () => {
    const me = await alice.http.request(ops.MeDocument);
    expect(me.me.deviceId).toBe(1);
    const before: Snapshot = await snap.take();
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(5);
    const failures: string[] = [];
    const all = cases();
    for (const c of all) {
      try {
        check(c.name, await run(c), c.expect);
        expect(await snap.take(), `${c.name} changed the database`).toEqual(before);
      } catch (err) {
        failures.push((err as Error).message.split("\n")[0]);
      }
    }
    expect(failures).toEqual([]);
    expect(all.length).toBeGreaterThanOrEqual(60);
    // Everything still works for the people who were attacked, and the snapshot does see a real change.
    await sendOpaque(alice, bob.userId, "still fine");
    expect(await snap.take()).not.toEqual(before);
  });

  // The operation each matrix row calls, with arguments pointing at alice's things.
  const matrix = (): Record<string, { op: Case["op"]; vars: () => Vars; public?: true; subscription?: true; otherUser?: Expect }> => ({
    me: { op: ops.MeDocument, vars: () => ({}) },
    user: { op: `query($id: ID!) { user(id: $id) { id } }`, vars: () => ({ id: alice.userId }) },
    userByUsername: { op: ops.UserByUsernameDocument, vars: () => ({ username: "nobody_here" }) },
    devices: { op: ops.DevicesDocument, vars: () => ({ userId: alice.userId }) },
    preKeyStatus: { op: ops.PreKeyStatusDocument, vars: () => ({}) },
    accountSettings: { op: ops.AccountSettingsDocument, vars: () => ({}) },
    conversations: { op: ops.ConversationsDocument, vars: () => ({}) },
    messages: { op: ops.MessagesDocument, vars: () => ({ conversationId }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    inbox: { op: ops.PollInboxDocument, vars: () => ({}) },
    presence: { op: ops.PresenceDocument, vars: () => ({ userIds: [alice.userId] }), otherUser: { data: { presence: [] } } },
    registerAccount: { op: ops.RegisterAccountDocument, vars: () => ({ input: { keys: keys({ identityKey: "x" }) } }), public: true },
    linkDevice: { op: ops.LinkDeviceDocument, vars: () => ({ input: { linkToken: usedLink, keys: keys() } }), public: true },
    createDeviceLink: { op: ops.CreateDeviceLinkDocument, vars: () => ({}) },
    deactivateDevice: { op: ops.DeactivateDeviceDocument, vars: () => ({ deviceId: alice2.deviceId }), otherUser: "NOT_FOUND" },
    // Acts on the caller's own device only: there is no other user's device to name.
    resetDeviceKeys: { op: ops.ResetDeviceKeysDocument, vars: () => ({ keys: keys() }) },
    uploadPreKeys: { op: ops.UploadPreKeysDocument, vars: () => ({ input: { oneTimePreKeys: [{ ...freshKeys.oneTimePreKeys![1], keyId: 1 }] } }) },
    rotateSignedPreKey: { op: ops.RotateSignedPreKeyDocument, vars: () => ({ key: malloryKeys.signed }) },
    rotateLastResortKyberPreKey: { op: ops.RotateLastResortKyberPreKeyDocument, vars: () => ({ key: malloryKeys.kyber }) },
    claimPreKeyBundles: { op: ops.ClaimPreKeyBundlesDocument, vars: () => ({ userId: randomUUID() }) },
    sendMessage: { op: ops.SendMessageDocument, vars: () => ({ input: sent.input }) },
    ackEnvelopes: { op: ops.AckEnvelopesDocument, vars: () => ({ ids: bobEnvelopeIds }), otherUser: { data: { ackEnvelopes: 0 } } },
    markRead: { op: ops.MarkReadDocument, vars: () => ({ messageIds: [sent.messageId] }), otherUser: { data: { markRead: 0 } } },
    deleteMessage: { op: ops.DeleteMessageDocument, vars: () => ({ messageId: sent.messageId, forEveryone: true }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    setReadReceipts: { op: ops.SetReadReceiptsDocument, vars: () => ({ enabled: true }) },
    // The id of a grant is the capability; no other user's grant can be named here.
    createAttachmentUpload: { op: ops.CreateAttachmentUploadDocument, vars: () => ({ input: { size: 1000 } }) },
    setTyping: { op: ops.SetTypingDocument, vars: () => ({ conversationId, isTyping: true }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    // Groups: "other user" is a non-member of owner's group.
    keyPackageStatus: { op: ops.KeyPackageStatusDocument, vars: () => ({}) },
    uploadKeyPackages: { op: ops.UploadKeyPackagesDocument, vars: () => ({ keyPackages: [keyPackage] }) },
    claimKeyPackages: { op: ops.ClaimKeyPackagesDocument, vars: () => ({ userIds: [randomUUID()] }) },
    createGroup: { op: ops.CreateGroupDocument, vars: () => ({ input: { mlsGroupId: "AAAA", name: "x" } }) },
    group: { op: ops.GroupDocument, vars: () => ({ id: groupId }), otherUser: [{ data: { group: null } }, "FORBIDDEN", "NOT_FOUND"] },
    myGroups: { op: ops.MyGroupsDocument, vars: () => ({}), otherUser: { data: { myGroups: [] } } },
    groupMembers: { op: ops.GroupMembersDocument, vars: () => ({ groupId }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    pendingGroupEvents: { op: ops.PendingGroupEventsDocument, vars: () => ({ groupId }), otherUser: ["FORBIDDEN", "NOT_FOUND", { data: { pendingGroupEvents: [] } }] },
    commitGroup: { op: ops.CommitGroupDocument, vars: () => ({ input: { ...commit, groupId } }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    sendGroupMessage: { op: ops.SendGroupMessageDocument, vars: () => ({ groupId, message: commit.commit }), otherUser: ["FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT"] },
    updateGroup: { op: ops.UpdateGroupDocument, vars: () => ({ input: { groupId, name: "mine now" } }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    setGroupRole: { op: ops.SetGroupRoleDocument, vars: () => ({ groupId, userId: mallory.userId, role: "ADMIN" }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    leaveGroup: { op: ops.LeaveGroupDocument, vars: () => ({ groupId }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    // A real, unacknowledged event of owner's group: a stranger's acknowledgement of it counts for nothing and moves
    // no cursor (the member's own acknowledgement of it counts 1: the last test).
    ackGroupEvents: { op: ops.AckGroupEventsDocument, vars: () => ({ ids: [memberEventId] }), otherUser: { data: { ackGroupEvents: 0 } } },
    groupMessageStatus: { op: ops.GroupMessageStatusDocument, vars: () => ({ messageId: `g:${groupId}:1` }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    markGroupRead: { op: ops.MarkGroupReadDocument, vars: () => ({ messageIds: [`g:${groupId}:1`] }), otherUser: [{ data: { markGroupRead: 0 } }, "FORBIDDEN", "NOT_FOUND"] },
    deleteGroupMessage: { op: ops.DeleteGroupMessageDocument, vars: () => ({ messageId: `g:${groupId}:1`, forEveryone: true }), otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    // TURN credentials name the caller only; without TURN config the list is empty for everyone.
    turnServers: { op: ops.TurnServersDocument, vars: () => ({}) },
    pushConfig: { op: ops.PushConfigDocument, vars: () => ({}), public: true },
    registerPush: { op: ops.RegisterPushDocument, vars: () => ({ input: { kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/x", ...pushKeys } }) },
    unregisterPush: { op: ops.UnregisterPushDocument, vars: () => ({}) },
    messageRequests: { op: ops.MessageRequestsDocument, vars: () => ({}) },
    presencePrivacy: { op: `query { presencePrivacy }`, vars: () => ({}) },
    setPresencePrivacy: { op: ops.SetPresencePrivacyDocument, vars: () => ({ visibility: "NOBODY" }) },
    acceptMessageRequest: { op: ops.AcceptMessageRequestDocument, vars: () => ({ userId: alice.userId }) },
    blockUser: { op: ops.BlockUserDocument, vars: () => ({ userId: alice.userId }) },
    unblockUser: { op: ops.UnblockUserDocument, vars: () => ({ userId: alice.userId }) },
    // Reports name a message the reporter can see: another user's message is not found.
    reportMessage: { op: ops.ReportMessageDocument, vars: () => ({ messageId: sent.messageId, reason: "spam" }), otherUser: "NOT_FOUND" },
    "subscription.groupEvents": { op: ops.GroupEventsDocument, vars: () => ({}), subscription: true },
    "subscription.inbox": { op: ops.InboxDocument, vars: () => ({}), subscription: true },
    "subscription.typing": { op: ops.TypingDocument, vars: () => ({ conversationId }), subscription: true, otherUser: ["FORBIDDEN", "NOT_FOUND"] },
    "subscription.presence": { op: ops.PresenceUpdatesDocument, vars: () => ({ userIds: [alice.userId] }), subscription: true },
  });

  it("covers every operation of the schema in the authorization matrix", () => {
    const names = [
      ...Object.keys(schema.getQueryType()!.getFields()),
      ...Object.keys(schema.getMutationType()!.getFields()),
      ...Object.keys(schema.getSubscriptionType()?.getFields() ?? {}).map((n) => `subscription.${n}`),
    ];
    expect(names.filter((n) => !(n in matrix()))).toEqual([]);
  });

  it("refuses every operation without a token, with a wrong token and with a deactivated device's token; other users reach nothing of alice's", async () => {
    const before = await snap.take();
    const callers: [string, () => string | null][] = [
      ["no token", () => null],
      ["wrong token", () => "vgt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
      ["deactivated device", () => deadToken],
    ];
    let cells = 0;
    const failures: string[] = [];
    for (const [name, row] of Object.entries(matrix())) {
      if (row.public) continue;
      for (const [who, token] of callers) {
        if (row.subscription) {
          const code = await subscribeRefusal(server.url, token(), row.op, row.vars());
          expect(code, `${name} / ${who}`).toBe("UNAUTHENTICATED");
        } else {
          check(`${name} / ${who}`, await run({ as: token, op: row.op, vars: row.vars }), "UNAUTHENTICATED");
        }
        cells++;
      }
      if (row.otherUser) {
        try {
          if (row.subscription) {
            const code = await subscribeRefusal(server.url, mallory.token, row.op, row.vars());
            expect([row.otherUser].flat() as unknown[], `${name} / other user`).toContain(code);
          } else {
            check(`${name} / other user`, await run({ as: M, op: row.op, vars: row.vars }), row.otherUser);
          }
        } catch (err) {
          failures.push((err as Error).message.split("\n")[0]);
        }
        cells++;
      }
    }
    expect(failures).toEqual([]);
    expect(cells).toBeGreaterThanOrEqual(100);
    expect(await snap.take()).toEqual(before);
  });

  // Subscriptions that take no id (inbox, groupEvents) or filter what they are given (presence) accept a stranger's
  // subscribe: the cell is that nothing of alice's (or of a group mallory is not in) ever reaches it. Each check ends
  // on a barrier: an event mallory must get, published after the one she must not, on the same bus.
  it("other users' subscriptions reveal nothing: presence, inbox, groupEvents", { timeout: 120_000 }, async () => {
    const sockets: ReturnType<typeof openWs>[] = [];
    const ws = (token: string) => (sockets.push(openWs(server.url, token, { lazy: false })), sockets.at(-1)!);
    const feeds: EventFeed[] = [];
    try {
      // presence: alice's own change (her other device connects) reaches alice's subscription, then mallory's own
      // change (a device of hers connects) reaches mallory's.
      const mallory2 = await linkNewDevice(server.url, mallory);
      const malloryPresence = collect(ws(mallory.token), ops.PresenceUpdatesDocument, { userIds: [alice.userId, mallory.userId] });
      await malloryPresence.until((xs) => xs.length >= 1, 15_000, "mallory's own state");
      const alicePresence = collect(ws(alice.token), ops.PresenceUpdatesDocument, { userIds: [alice.userId] });
      await alicePresence.until((xs) => xs.length >= 1, 15_000, "alice's own state");
      const seen = alicePresence.items.length;
      ws(alice2.token);
      await alicePresence.until((xs) => xs.length > seen, 15_000, "alice's new socket announced");
      const mine = malloryPresence.items.length;
      ws(mallory2.token);
      await malloryPresence.until((xs) => xs.length > mine, 15_000, "mallory's new socket announced");
      expect(malloryPresence.items.map((x) => x.presence.userId)).not.toContain(alice.userId);

      // inbox: an envelope for bob, then one for mallory; mallory's stream holds hers only.
      const malloryInbox = collect(ws(mallory.token), ops.InboxDocument, {});
      const bobInbox = collect(ws(bob.token), ops.InboxDocument, {});
      const toBob = await sendOpaque(alice, bob.userId, "for bob only");
      await bobInbox.until((xs) => xs.some((x) => x.inbox.__typename === "EnvelopeEvent" && x.inbox.envelope.messageId === toBob.messageId), 15_000, "bob's envelope");
      const toMallory = await sendOpaque(alice, mallory.userId, "for mallory");
      const envelopes = (xs: typeof malloryInbox.items) => xs.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" ? [x.inbox.envelope.messageId] : []));
      await malloryInbox.until((xs) => envelopes(xs).includes(toMallory.messageId), 15_000, "mallory's envelope");
      expect(envelopes(malloryInbox.items)).toEqual([toMallory.messageId]);

      // groupEvents: owner's group talks (its member sees it), then a group mallory is in talks; mallory sees only that.
      const malloryMls = new MlsGroupManager(new MemoryKeyValueStore(), mallory.http, mallory.address);
      await malloryMls.keyPackages.upload(2, true);
      await new MlsGroupManager(new MemoryKeyValueStore(), mallory2.http, mallory2.address).keyPackages.upload(2, true);
      const carol = await mlsMember(server.url);
      const malloryFeed = new EventFeed(server.url, mallory.token);
      const memberFeed = new EventFeed(server.url, member.token);
      feeds.push(malloryFeed, memberFeed);
      const carolGroup = await carol.mls.createGroup({ name: "with mallory", memberUserIds: [mallory.userId] });
      await malloryFeed.waitFor((es) => es.some((e) => e.groupId === carolGroup), 15_000, "mallory's welcome");
      await memberFeed.waitFor((es) => es.some((e) => e.groupId === groupId), 15_000, "the member's replay");
      const secret = await owner.mls.send(groupId, new TextEncoder().encode("members only"));
      await memberFeed.waitFor((es) => es.some((e) => e.id === secret), 15_000, "the member's live event");
      const barrier = await carol.mls.send(carolGroup, new TextEncoder().encode("hello mallory"));
      await malloryFeed.waitFor((es) => es.some((e) => e.id === barrier), 15_000, "mallory's group message");
      expect(malloryFeed.events.filter((e) => e.groupId !== carolGroup)).toEqual([]);

      // The ackGroupEvents cell's id is real: its member's acknowledgement counts.
      expect((await member.http.request(ops.AckGroupEventsDocument, { ids: [memberEventId] })).ackGroupEvents).toBe(1);
    } finally {
      for (const f of feeds) await f.close();
      for (const s of sockets) await s.dispose();
    }
  });
});

/**
 * Over graphql-ws: a token refused at connection_init closes the socket (4403) before any operation; that is
 * reported as UNAUTHENTICATED. A subscription refused by its resolver reports its code.
 */
async function subscribeRefusal(url: string, token: string | null, op: Case["op"], vars: Vars): Promise<string> {
  const closedWith: number[] = [];
  const client = openWs(url, token ?? "", { onClosed: (code) => closedWith.push(code) });
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("subscription neither refused nor answered in 10 s")), 10_000);
      client.subscribe(
        { query: typeof op === "string" ? op : queryText(op), variables: vars },
        {
          next: (v) => {
            clearTimeout(timer);
            const code = (v.errors?.[0] as { extensions?: { code?: string } } | undefined)?.extensions?.code;
            if (code) resolve(code);
            else reject(new Error(`subscription was accepted: ${JSON.stringify(v.data)}`));
          },
          error: (err) => {
            clearTimeout(timer);
            if (Array.isArray(err)) return resolve((err[0] as { extensions?: { code?: string } }).extensions?.code ?? "?");
            resolve(closedWith.includes(4403) || (err as { code?: number }).code === 4403 ? "UNAUTHENTICATED" : `closed ${(err as { code?: number }).code}`);
          },
          complete: () => {
            clearTimeout(timer);
            reject(new Error("subscription completed without a refusal"));
          },
        },
      );
    });
  } finally {
    await client.dispose();
  }
}
