// client.block / unblock / acceptRequest / report / requests / setPresencePrivacy, and message requests shown apart:
// a 1:1 message from someone this account never wrote to or accepted also raises "messageRequest". Until accepted
// (or answered) the server hides this account's presence, typing and receipts from them.
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
import type { HttpTransport } from "./transport.ts";

export interface MessageRequest {
  userId: string;
  since: string;
}

export interface ConsentDeps {
  http: HttpTransport;
  resolveUser(who: string): Promise<string>;
  emit(event: "messageRequest", value: { userId: string; message: ReceivedMessage }): Promise<void>;
  fail(err: unknown): void;
}

// Senders known not to be requests (accepted or answered): asking the server again would change nothing.
const MAX_KNOWN = 10_000;

export class Consent {
  private known = new Set<string>();
  constructor(private readonly d: ConsentDeps) {}

  /** Pending requests, oldest first. */
  requests(): Promise<MessageRequest[]> {
    return wrap(async () => (await this.d.http.request(MessageRequestsDocument)).messageRequests);
  }

  async accept(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    await wrap(() => this.d.http.request(AcceptMessageRequestDocument, { userId }));
    this.remember(userId);
  }

  async block(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    await wrap(() => this.d.http.request(BlockUserDocument, { userId }));
  }

  async unblock(who: string): Promise<void> {
    const userId = await this.d.resolveUser(who);
    await wrap(() => this.d.http.request(UnblockUserDocument, { userId }));
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
