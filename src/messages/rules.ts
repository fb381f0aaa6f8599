// The rules of 1:1 messaging as pure functions: input bounds, Signal-Server's device-set checks (missing, extra and
// stale devices), self-destruct and delete-for-everyone times, status, and cursors. No database, no bus.
import { createHash } from "node:crypto";
import { AppError, badInput, conflict, forbidden, notFound } from "../errors.ts";
import type { Actor } from "../deps.ts";
import { MAX_DEVICE_ID, canonicalUuid, isDeviceId, parseEpochMillis, parseInt64 } from "../ids.ts";

export const MESSAGE_TYPES = [
  "TEXT", "MEDIA", "VOICE", "FILE", "LOCATION", "CONTACT", "POLL", "EVENT", "CALL",
  "STICKER", "REACTION", "EDIT", "SYSTEM", "OTHER",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const MAX_CLIENT_MESSAGE_ID = 64;
export const MAX_EXPIRES_IN_SECONDS = 365 * 86_400;
export const MAX_MESSAGE_IDS = 500;
// libsignal gives each device a 14-bit registration id.
export const MAX_REGISTRATION_ID = 0x3fff;
const inRange = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max;

export interface EnvelopeInput {
  deviceId: number;
  registrationId: number;
  type: number;
  body: Uint8Array;
}

export interface SendMessageInput {
  recipientUserId: string;
  clientMessageId: string;
  messageType: MessageType;
  expiresInSeconds?: number | null;
  envelopes: EnvelopeInput[];
  syncEnvelopes?: EnvelopeInput[] | null;
  /** Live only: published to the devices connected now, never stored or queued (call signaling). */
  online?: boolean | null;
}

export interface SendResult {
  messageId: string;
  serverTimestamp: Date;
}

export type MessageStatus = "SENT" | "DELIVERED" | "READ";

export interface MessageInfo {
  id: string;
  seq: bigint;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: number;
  /** null for a group message: its recipients are the group's members. */
  recipientUserId: string | null;
  /** null for a group message (MLS carries no client message id the server can read). */
  clientMessageId: string | null;
  /** null for a group message: only 1:1 senders declare a type to the server. */
  messageType: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  deliveredAt: Date | null;
  readAt: Date | null;
}

export interface ConversationInfo {
  id: string;
  userA: string;
  userB: string;
  createdAt: Date;
  lastMessageAt: Date;
}

export interface Page {
  after?: string | null;
  before?: string | null;
  limit: number;
  /** true when the client asked for the last items (relay `last`): read in the opposite order. */
  inverted: boolean;
}

/** A device as the device-set checks see it. */
export interface ActiveDevice {
  userId: string;
  deviceId: number;
  registrationId: number;
}

/** A send that passed its input checks, waiting for its batch. */
export interface SendRequest {
  actor: Actor;
  recipient: string;
  clientMessageId: string;
  messageType: MessageType;
  /** Self-destruct timer in seconds, or null. */
  ttl: number | null;
  envelopes: EnvelopeInput[];
  sync: EnvelopeInput[];
  /** Live only: nothing stored (see SendMessageInput.online). */
  online: boolean;
}

/**
 * What a send asked for, as a digest: the same clientMessageId must mean the same send. Envelopes are taken in
 * device order, so a retry that lists them in another order is still the same send. Fields go into the hash as they
 * are, each length-prefixed or fixed-size: the JSON of base64 bodies this replaced was 3% of a send's allocations.
 * A version byte leads, so a digest stored before it (32 bytes, legacySendDigest) still compares.
 */
export function sendDigest(req: SendRequest): Buffer {
  const h = createHash("sha256");
  h.update(`${req.recipient}\n${req.messageType}\n${req.ttl ?? ""}\n${req.envelopes.length}\n${req.sync.length}\n`);
  const head = Buffer.allocUnsafe(16);
  for (const list of [req.envelopes, req.sync]) {
    for (const e of inDeviceOrder(list)) {
      head.writeUInt32BE(e.deviceId, 0);
      head.writeUInt32BE(e.registrationId, 4);
      head.writeUInt32BE(e.type, 8);
      head.writeUInt32BE(e.body.byteLength, 12);
      h.update(head);
      h.update(e.body);
    }
  }
  return Buffer.concat([DIGEST_VERSION, h.digest()]);
}

const DIGEST_VERSION = Buffer.from([2]);

// Sends list their envelopes in device order already (the SDK does); a copy is sorted only when they do not.
function inDeviceOrder(list: EnvelopeInput[]): EnvelopeInput[] {
  for (let i = 1; i < list.length; i++) {
    if (list[i - 1]!.deviceId > list[i]!.deviceId) return [...list].sort((a, b) => a.deviceId - b.deviceId);
  }
  return list;
}

/** The digest of sends stored before sendDigest's version 2 (messages kept since then may be retried). */
export function legacySendDigest(req: SendRequest): Buffer {
  const h = createHash("sha256");
  const envelopes = (list: EnvelopeInput[]) =>
    [...list].sort((a, b) => a.deviceId - b.deviceId).map((e) => [e.deviceId, e.registrationId, e.type, Buffer.from(e.body).toString("base64")]);
  h.update(JSON.stringify([req.recipient, req.messageType, req.ttl, envelopes(req.envelopes), envelopes(req.sync)]));
  return h.digest();
}

/** A retry's answer: the first send's, unless the retry asks for something else under the same id. */
export function replayAnswer(req: SendRequest, first: SendResult & { digest: Uint8Array | null }): SendResult {
  const digest = first.digest && Buffer.from(first.digest);
  if (digest && !digest.equals(digest.length === 32 ? legacySendDigest(req) : sendDigest(req))) {
    throw conflict("that clientMessageId was already used for another message", { messageId: first.messageId });
  }
  return { messageId: first.messageId, serverTimestamp: first.serverTimestamp };
}

/** A message connection cursor: the message's sequence number in its conversation or group. */
export function cursorSeq(cursor: string): bigint {
  const v = parseInt64(cursor);
  if (v === null) throw badInput("invalid cursor");
  return v;
}

export const statusOf = (m: Pick<MessageInfo, "deliveredAt" | "readAt">): MessageStatus =>
  m.readAt ? "READ" : m.deliveredAt ? "DELIVERED" : "SENT";

/** A conversation's two users in the order it is stored under. */
export const pair = (a: string, b: string): [string, string] => (a <= b ? [a, b] : [b, a]);

export interface EnvelopeLimits {
  maxDevicesPerUser: number;
  maxEnvelopeBytes: number;
}

export function checkEnvelopes(list: EnvelopeInput[], field: string, limits: EnvelopeLimits): void {
  if (list.length > limits.maxDevicesPerUser) {
    throw badInput(`${field}: at most ${limits.maxDevicesPerUser} envelopes (one per device)`);
  }
  const seen = new Set<number>();
  for (const [i, e] of list.entries()) {
    if (seen.has(e.deviceId)) throw badInput(`${field}[${i}]: two envelopes for device ${e.deviceId}`);
    seen.add(e.deviceId);
    if (e.body.byteLength === 0) throw badInput(`${field}[${i}].body is empty`);
    if (e.body.byteLength > limits.maxEnvelopeBytes) {
      throw new AppError("LIMIT_EXCEEDED", `${field}[${i}].body is over ${limits.maxEnvelopeBytes} bytes`, {
        maxEnvelopeBytes: limits.maxEnvelopeBytes,
      });
    }
    if (!inRange(e.type, 0, 255)) throw badInput(`${field}[${i}].type must be 0-255`);
    if (!isDeviceId(e.deviceId)) throw badInput(`${field}[${i}].deviceId must be 1-${MAX_DEVICE_ID}`);
    if (!inRange(e.registrationId, 0, MAX_REGISTRATION_ID)) {
      throw badInput(`${field}[${i}].registrationId must be 0-${MAX_REGISTRATION_ID}`);
    }
  }
}

// The common case, checked without building sets: `expected` (the active devices) has distinct ids, so as many
// envelopes as devices, each device's found with its registration id, is exactly one envelope per device.
function sameDevices(expected: { deviceId: number; registrationId: number }[], given: { deviceId: number; registrationId: number }[]) {
  if (expected.length !== given.length) return false;
  for (const d of expected) {
    if (!given.some((e) => e.deviceId === d.deviceId && e.registrationId === d.registrationId)) return false;
  }
  return true;
}

/** Signal-Server's rule: exactly one envelope per active device, with the registration id the sender knows. */
export function checkDeviceSet(
  userId: string,
  expected: { deviceId: number; registrationId: number }[],
  given: { deviceId: number; registrationId: number }[],
): void {
  if (sameDevices(expected, given)) return;
  const want = new Map(expected.map((d) => [d.deviceId, d.registrationId]));
  const have = new Set(given.map((e) => e.deviceId));
  const missingDevices = [...want.keys()].filter((d) => !have.has(d)).sort((a, b) => a - b);
  const extraDevices = [...have].filter((d) => !want.has(d)).sort((a, b) => a - b);
  if (missingDevices.length || extraDevices.length) {
    throw new AppError("MISMATCHED_DEVICES", "the envelopes do not match the user's active devices", {
      userId,
      missingDevices,
      extraDevices,
    });
  }
  const staleDevices = given
    .filter((e) => want.get(e.deviceId) !== e.registrationId)
    .map((e) => e.deviceId)
    .sort((a, b) => a - b);
  if (staleDevices.length) {
    throw new AppError("STALE_DEVICES", "some devices were re-registered: fetch their bundles again", {
      userId,
      staleDevices,
    });
  }
}

/** The input checks of a send, before it waits for its batch. */
export function prepareSend(actor: Actor, input: SendMessageInput, limits: EnvelopeLimits): SendRequest {
  const clientMessageId = input.clientMessageId;
  if (clientMessageId.length < 1 || clientMessageId.length > MAX_CLIENT_MESSAGE_ID) {
    throw badInput(`clientMessageId must be 1 to ${MAX_CLIENT_MESSAGE_ID} characters`);
  }
  const ttl = input.expiresInSeconds ?? null;
  if (ttl !== null && (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_EXPIRES_IN_SECONDS)) {
    throw badInput(`expiresInSeconds must be 1 to ${MAX_EXPIRES_IN_SECONDS}`);
  }
  const envelopes = input.envelopes;
  const sync = input.syncEnvelopes ?? [];
  checkEnvelopes(envelopes, "envelopes", limits);
  checkEnvelopes(sync, "syncEnvelopes", limits);
  // The services only ever see the lowercase spelling, as of every other UUID (graphql/validation.ts).
  const recipient = canonicalUuid(input.recipientUserId);
  if (recipient === null) throw badInput("recipientUserId must be a UUID");
  return { actor, recipient, clientMessageId, messageType: input.messageType, ttl, envelopes, sync, online: !!input.online };
}

/**
 * The device-set checks of a send against the active devices of its recipient and its sender (`devices` holds
 * both users'); throws the refusal. In Note to Self the envelopes go to the sender's other devices.
 */
export function checkRecipients(req: SendRequest, devices: ActiveDevice[]): void {
  const { actor, recipient } = req;
  const noteToSelf = recipient === actor.userId;
  const ownOthers = devices.filter((d) => d.userId === actor.userId && d.deviceId !== actor.deviceId);
  const theirs = noteToSelf ? ownOthers : devices.filter((d) => d.userId === recipient);
  if (!noteToSelf && theirs.length === 0) throw notFound("no such user, or the user has no active device");
  checkDeviceSet(recipient, theirs, req.envelopes);
  // In Note to Self the envelopes already are the sync copies.
  checkDeviceSet(actor.userId, noteToSelf ? [] : ownOthers, req.sync);
}

/** The self-destruct time of a message sent at `now` with this timer, or null. */
export function selfDestructAt(now: Date, ttlSeconds: number | null): Date | null {
  return ttlSeconds ? new Date(now.getTime() + ttlSeconds * 1000) : null;
}

/** Delete for everyone: only the sender, and only within the window after sending. */
export function checkDeleteForEveryone(
  m: { senderUserId: string; createdAt: Date },
  actor: Actor,
  now: Date,
  windowSeconds: number,
): void {
  if (m.senderUserId !== actor.userId) throw forbidden("only the sender can delete a message for everyone");
  if (now.getTime() - m.createdAt.getTime() > windowSeconds * 1000) {
    throw forbidden(`a message can be deleted for everyone only within ${windowSeconds} s`);
  }
}

/**
 * Metadata retention's cutoffs at `now`: a row whose use is over goes once it is older than `created` (the retention,
 * but never while delete-for-everyone may still name it) and unchanged since `changed` (status kept that long).
 */
export function metadataCutoffs(
  now: Date,
  limits: { metadataRetentionSeconds: number; deleteForEveryoneWindowSeconds: number },
): { created: Date; changed: Date } {
  const keep = limits.metadataRetentionSeconds * 1000;
  const created = new Date(now.getTime() - Math.max(keep, limits.deleteForEveryoneWindowSeconds * 1000));
  return { created, changed: new Date(now.getTime() - keep) };
}

export const conversationCursor = (c: ConversationInfo) => `${c.lastMessageAt.getTime()}_${c.id}`;

export function parseConversationCursor(cursor: string): { at: Date; id: string } {
  const m = /^(\d{1,16})_(.{36})$/.exec(cursor);
  const at = m && parseEpochMillis(m[1]);
  const id = m && canonicalUuid(m[2]);
  if (!at || !id) throw badInput("invalid cursor");
  return { at, id };
}
