// client.block / unblock / acceptRequest / report / requests / setPresencePrivacy, and message requests shown apart:
// a 1:1 message from someone this account never wrote to or accepted also raises "messageRequest". Until accepted
// (or answered) the server hides this account's presence, typing and receipts from them.
// Blocked users, as this device blocked them, are also kept in the account store: the server drops their sends
// from the block on, and this device drops what it receives from them after it (copies queued before the block,
// or published just before it), as Signal shows nothing from a blocked contact. Their envelopes are still decrypted
// (the session stays in step for an unblock) and acknowledged; nothing is stored or handed to the app.
import {
  AcceptMessageRequestDocument,
  BlockUserDocument,
  MessageRequestsDocument,
  ReportMessageDocument,
  SetPresencePrivacyDocument,
  UnblockUserDocument,
  type PresenceVisibility,
} from "./generated/graphql.ts";
import { wrap } from "./errors.ts";
import type { ReceivedMessage } from "./events.ts";
import type { KeyValueStore } from "./signal/kv.ts";
import type { HttpTransport } from "./transport.ts";

export interface MessageRequest {
  userId: string;
  since: string;
}

export interface ConsentDeps {
  http: HttpTransport;
  kv: KeyValueStore;
  resolveUser(who: string): Promise<string>;
  emit(event: "messageRequest", value: { userId: string; message: ReceivedMessage }): Promise<void>;
  fail(err: unknown): void;
}

// Senders known not to be requests (accepted or answered): asking the server again would change nothing.
const MAX_KNOWN = 10_000;

const BLOCKED = "blocked/";

export class Consent {
  private known = new Set<string>();
  private blockedUsers: Promise<Set<string>> | null = null;
  constructor(private readonly d: ConsentDeps) {}

  /** Whether this device blocked the user (what it receives from them is dropped). */
  async isBlocked(userId: string): Promise<boolean> {
    return (await this.blocked()).has(userId);
  }

  private blocked(): Promise<Set<string>> {
    this.blockedUsers ??= this.d.kv.list(BLOCKED).then((keys) => new Set(keys.map((k) => k.slice(BLOCKED.length))));
    return this.blockedUsers;
  }

  /** Pending requests, oldest first. */
  requests(): Promise<MessageRequest[]> {
    return wrap(async () => (await this.d.http.request(MessageRequestsDocument)).messageRequests);
  }

  async accept(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    await wrap(() => this.d.http.request(AcceptMessageRequestDocument, { userId }));
    this.remember(userId);
  }

  /** Blocks the user; from now on nothing of theirs reaches the app, even what the server had queued before. */
  async block(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    // Dropped from here on, including envelopes that arrive while the server is asked; taken back if it refuses.
    (await this.blocked()).add(userId);
    try {
      await wrap(() => this.d.http.request(BlockUserDocument, { userId }));
    } catch (err) {
      (await this.blocked()).delete(userId);
      throw err;
    }
    await this.d.kv.set(BLOCKED + userId, new Uint8Array(1));
  }

  async unblock(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    await wrap(() => this.d.http.request(UnblockUserDocument, { userId }));
    await this.d.kv.delete(BLOCKED + userId);
    (await this.blocked()).delete(userId);
  }

  /** Reports a message to the operators; `excerpt` is plaintext you choose to reveal (nothing else is). */
  async report(messageId: string, reason?: string, excerpt?: string): Promise<void> {
    await wrap(() => this.d.http.request(ReportMessageDocument, { messageId, reason: reason ?? null, excerpt: excerpt ?? null }));
  }

  async setPresencePrivacy(visibility: PresenceVisibility): Promise<void> {
    await wrap(() => this.d.http.request(SetPresencePrivacyDocument, { visibility }));
  }

  /** Called for every received message; raises "messageRequest" without holding up the message's acknowledgement. */
  seen(m: ReceivedMessage): void {
    if (m.isSync || m.groupId || m.direction !== "in" || this.known.has(m.from.userId)) return;
    void (async () => {
      const pending = await this.requests();
      if (pending.some((r) => r.userId === m.from.userId)) await this.d.emit("messageRequest", { userId: m.from.userId, message: m });
      else this.remember(m.from.userId);
    })().catch((e) => this.d.fail(e));
  }

  private remember(userId: string) {
    if (this.known.size >= MAX_KNOWN) this.known.clear();
    this.known.add(userId);
  }
}
