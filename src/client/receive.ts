// The envelope pipeline, at least once to the app: decrypt; store the ratchet step, the plaintext and what the
// content changes (a new message, or a reaction, edit, vote or RSVP folded into one) in one transaction; hand it to
// the app; mark the envelope seen; acknowledge. A crash or a throwing handler before the acknowledgement leaves the
// envelope queued, and its redelivery is handed over from the saved plaintext (the message key is spent) once more.
import { ContentError, decodeContent, isAction } from "./content.ts";
import { receivedAction } from "./conversation.ts";
import type { Mutex } from "./emitter.ts";
import type { ClientEvents, ReceivedMessage } from "./events.ts";
import type { InboxSubscription } from "./generated/graphql.ts";
import type { MessageStore } from "./message-store.ts";
import type { Address } from "./messaging.ts";
import type { StagedKeyValueStore } from "./signal/kv.ts";
import type { SignalDevice } from "./signal/device.ts";
import { fold } from "./store/fold.ts";
import type { MessageRecord, WriteBatch } from "./store/types.ts";

export type EnvelopeEvent = Extract<InboxSubscription["inbox"], { __typename: "EnvelopeEvent" }>;
type Envelope = EnvelopeEvent["envelope"];

export interface ReceiveDeps {
  self: Address;
  store: MessageStore;
  staged: StagedKeyValueStore;
  crypto: Mutex;
  signal(): SignalDevice;
  emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): Promise<void>;
  ack(eventId: string): Promise<void>;
  scheduleExpiry(m: MessageRecord): void;
  /** A user this device blocked: what comes from them is dropped after decryption (see consent.ts). */
  isBlocked(userId: string): Promise<boolean>;
}

interface Prepared {
  batch: WriteBatch;
  handOver(): Promise<void>;
}
type Outcome = Prepared | { undecryptable: unknown };

const NO_ROWS = { reactions: [], edits: [], votes: [], rsvps: [] };

/** Decodes a plaintext into the changes to store and what to tell the app; throws ContentError if malformed. */
async function prepare(d: ReceiveDeps, env: Envelope, from: Address, plaintext: Uint8Array): Promise<Prepared> {
  const content = decodeContent(plaintext);
  const isSync = from.userId === d.self.userId;
  const peerUserId = isSync ? (content.sentTo ?? d.self.userId) : from.userId;
  // Call signaling is live-only: a queued copy (another client's doing) is stale by definition and dropped.
  if (content.body.kind === "call" || (!isSync && (await d.isBlocked(from.userId)))) return { batch: {}, handOver: async () => {} };
  const conversations = [{ peerUserId, conversationId: env.conversationId }];
  if (isAction(content.body)) {
    const ctx = { messageId: env.messageId, from, serverTimestamp: env.serverTimestamp, conversation: peerUserId };
    const changes = await receivedAction(d.store, ctx, content.body);
    return {
      batch: { conversations, ...changes?.batch },
      async handOver() {
        const e = changes && (await changes.event());
        if (e) await d.emit(e[0], e[1] as never);
      },
    };
  }
  const record: MessageRecord = {
    messageId: env.messageId,
    conversationId: env.conversationId,
    peerUserId,
    groupId: null,
    direction: isSync ? "out" : "in",
    from,
    sentAt: content.sentAt,
    serverTimestamp: env.serverTimestamp,
    body: content.body,
    expiresAt: env.expiresAt ?? null,
    replyTo: content.replyTo ?? null,
  };
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= Date.now()) return { batch: { conversations }, handOver: async () => {} };
  return {
    batch: { conversations, messages: [record] },
    async handOver() {
      const stored = (await d.store.get(record.messageId)) ?? fold(record, NO_ROWS);
      const msg: ReceivedMessage = { ...stored, envelopeId: env.id, isSync };
      // The app's handlers run before the acknowledgement: if one throws, the envelope stays queued and comes back.
      await d.emit(record.body.kind === "unsupported" ? "unsupported" : "message", msg);
      d.scheduleExpiry(record);
    },
  };
}

async function decryptAndStore(d: ReceiveDeps, env: Envelope, from: Address): Promise<Outcome> {
  d.staged.begin();
  let plaintext;
  try {
    plaintext = await d.signal().decrypt(d.self, from, env.type, env.body);
  } catch (err) {
    d.staged.rollback();
    return { undecryptable: err };
  }
  // Nothing of the decryption reached the store yet: if the transaction below fails, the envelope decrypts again.
  const kv = d.staged.take();
  let prepared: Prepared;
  try {
    prepared = await prepare(d, env, from, plaintext);
  } catch (err) {
    if (!(err instanceof ContentError)) throw err;
    await d.store.apply({ kv, seen: [env.id] }); // the message key is spent either way
    return { undecryptable: err };
  }
  await d.store.apply({ ...prepared.batch, kv, pending: [{ envelopeId: env.id, plaintext }] });
  return prepared;
}

export async function receiveEnvelope(d: ReceiveDeps, ev: EnvelopeEvent): Promise<void> {
  const env = ev.envelope;
  if (await d.store.isSeen(env.id)) return d.ack(ev.id);
  const from = { userId: env.senderUserId, deviceId: env.senderDeviceId };
  const pending = await d.store.pending(env.id);
  let outcome: Outcome;
  if (pending) {
    try {
      outcome = await prepare(d, env, from, pending);
      // Idempotent: a plaintext left by a crash may predate its message's row (older SDK versions stored it later).
      await d.store.apply(outcome.batch);
    } catch (err) {
      if (!(err instanceof ContentError)) throw err;
      outcome = { undecryptable: err };
    }
  } else outcome = await d.crypto.run(() => decryptAndStore(d, env, from));

  if ("undecryptable" in outcome) {
    // An envelope that cannot be decrypted never will be (e.g. sealed to an identity this device replaced):
    // report it and let it go rather than block the queue behind it.
    const err = outcome.undecryptable;
    await d.emit("undecryptable", { envelopeId: env.id, from, reason: (err as Error)?.message ?? String(err) });
  } else await outcome.handOver();
  // Relaxed: losing this on power loss costs at most one more hand-over of an envelope never acknowledged, or a
  // leftover plaintext row of one that was; what the app was given is already stored strictly.
  await d.store.apply({ seen: [env.id], pending: [{ envelopeId: env.id, plaintext: null }] }, { durability: "relaxed" });
  await d.ack(ev.id);
}
