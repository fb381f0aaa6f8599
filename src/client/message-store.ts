// The device's local view of its conversations, over the account store: messages (in and out) with reactions, edits
// and tallies folded in, which envelopes the app has already been given (so a redelivered envelope is acknowledged,
// not shown twice), the plaintext of an envelope decrypted but not yet handed over (a Signal message key works once,
// so a crash between decrypting and acknowledging must not lose it), and conversation ids learnt from the server.
import type { AccountStore, ApplyOptions, MessageRecord, PageQuery, SearchQuery, StoredMessage, WriteBatch } from "./store/types.ts";

export type { MessageRecord, StoredMessage, WriteBatch };

export class MessageStore {
  constructor(private store: AccountStore) {}

  /** Applies one atomic change. */
  apply(batch: WriteBatch, opts?: ApplyOptions): Promise<void> {
    return this.store.apply(batch, opts);
  }
  put(m: MessageRecord): Promise<void> {
    return this.store.apply({ messages: [m] });
  }
  get(messageId: string): Promise<StoredMessage | undefined> {
    return this.store.getMessage(messageId);
  }
  receipt(messageId: string, at: { readAt?: string; deliveredAt?: string }): Promise<void> {
    return this.store.apply({ receipts: [{ messageId, ...at }] });
  }
  /** Removes a message and what was folded into it; true when there was one. */
  async remove(messageId: string): Promise<boolean> {
    const had = (await this.store.getMessage(messageId)) !== undefined;
    if (had) await this.store.apply({ remove: [messageId] });
    return had;
  }
  /** Newest first. */
  page(q: PageQuery): Promise<StoredMessage[]> {
    return this.store.messages(q);
  }
  /** Every message of one conversation (or all), oldest first. */
  async list(conversation?: string): Promise<StoredMessage[]> {
    return (await this.store.messages({ conversation, limit: -1 })).reverse();
  }
  search(q: SearchQuery): Promise<StoredMessage[]> {
    return this.store.search(q);
  }
  expiring() {
    return this.store.expiring();
  }
  isSeen(envelopeId: string): Promise<boolean> {
    return this.store.isSeen(envelopeId);
  }
  pending(envelopeId: string) {
    return this.store.pending(envelopeId);
  }
  conversationWith(peerUserId: string) {
    return this.store.conversationWith(peerUserId);
  }
  peerOf(conversationId: string) {
    return this.store.peerOf(conversationId);
  }
  async learnConversation(peerUserId: string, conversationId: string): Promise<void> {
    if ((await this.conversationWith(peerUserId)) !== conversationId) await this.store.apply({ conversations: [{ peerUserId, conversationId }] });
  }
}
