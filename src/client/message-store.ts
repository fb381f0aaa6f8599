// The device's local view of its conversations, kept in the account directory: messages (in and out), which
// envelopes the app has already been given (so a redelivered envelope is acknowledged, not shown twice), the
// plaintext of an envelope decrypted but not yet handed over (a Signal message key works once, so a crash between
// decrypting and acknowledging must not lose it), and conversation ids learnt from the server.
import type { MessageBody } from "./content.ts";
import type { KeyValueStore } from "./signal/kv.ts";
import { Mutex } from "./emitter.ts";

export interface StoredMessage {
  messageId: string;
  conversationId: string | null;
  /** The other party (your own user id for a note to self; the group's id for a group message). */
  peerUserId: string;
  /** Set for a group message. */
  groupId?: string;
  direction: "in" | "out";
  from: { userId: string; deviceId: number };
  sentAt: number;
  serverTimestamp: string;
  body: MessageBody;
  /** When this copy self-destructs (ISO), if it does. */
  expiresAt: string | null;
  readAt?: string;
  deliveredAt?: string;
}

const json = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v), "utf8"));
const parse = <T>(b: Uint8Array | undefined): T | undefined => (b ? (JSON.parse(Buffer.from(b).toString("utf8")) as T) : undefined);
const ONE = new Uint8Array([1]);

export class MessageStore {
  // update is read-modify-write: a receipt arriving while the app deletes the message must not bring it back.
  private edits = new Mutex();
  constructor(private kv: KeyValueStore) {}

  async put(m: StoredMessage): Promise<void> {
    await this.kv.set(`msg/${m.messageId}`, json(m));
  }
  async get(messageId: string): Promise<StoredMessage | undefined> {
    return parse<StoredMessage>(await this.kv.get(`msg/${messageId}`));
  }
  async update(messageId: string, patch: Partial<StoredMessage>): Promise<StoredMessage | undefined> {
    return this.edits.run(async () => {
      const m = await this.get(messageId);
      if (!m) return undefined;
      const next = { ...m, ...patch };
      await this.put(next);
      return next;
    });
  }
  /** Removes a message; true when there was one. */
  async remove(messageId: string): Promise<boolean> {
    return this.edits.run(async () => {
      const had = (await this.kv.get(`msg/${messageId}`)) !== undefined;
      await this.kv.delete(`msg/${messageId}`);
      return had;
    });
  }
  /** Messages, oldest first, optionally of one peer. */
  async list(peerUserId?: string): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const k of await this.kv.list("msg/")) {
      const m = parse<StoredMessage>(await this.kv.get(k));
      if (m && (!peerUserId || m.peerUserId === peerUserId)) out.push(m);
    }
    return out.sort((a, b) => a.serverTimestamp.localeCompare(b.serverTimestamp) || a.sentAt - b.sentAt);
  }

  async isSeen(eventId: string): Promise<boolean> {
    return (await this.kv.get(`seen/${eventId}`)) !== undefined;
  }
  async markSeen(eventId: string): Promise<void> {
    await this.kv.set(`seen/${eventId}`, ONE);
  }

  async pending(envelopeId: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return this.kv.get(`pending/${envelopeId}`);
  }
  async setPending(envelopeId: string, plaintext: Uint8Array<ArrayBuffer>): Promise<void> {
    await this.kv.set(`pending/${envelopeId}`, plaintext);
  }
  async clearPending(envelopeId: string): Promise<void> {
    await this.kv.delete(`pending/${envelopeId}`);
  }

  async conversationWith(peerUserId: string): Promise<string | undefined> {
    const b = await this.kv.get(`conv/${peerUserId}`);
    return b ? Buffer.from(b).toString("utf8") : undefined;
  }
  async learnConversation(peerUserId: string, conversationId: string): Promise<void> {
    if ((await this.conversationWith(peerUserId)) !== conversationId) {
      await this.kv.set(`conv/${peerUserId}`, new Uint8Array(Buffer.from(conversationId, "utf8")));
      await this.kv.set(`convpeer/${conversationId}`, new Uint8Array(Buffer.from(peerUserId, "utf8")));
    }
  }
  async peerOf(conversationId: string): Promise<string | undefined> {
    const b = await this.kv.get(`convpeer/${conversationId}`);
    return b ? Buffer.from(b).toString("utf8") : undefined;
  }
}
