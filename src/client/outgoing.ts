// What the app sends: messages (stored locally as sent), the reactions, edits, votes and RSVPs that change a message,
// read receipts, deletions, typing, and default self-destruct timers. A 1:1 conversation goes through the Sender
// (Signal envelopes); a group conversation through the group (MLS), chosen by the message or conversation named.
import { checkOutgoing, isAction, type ActionBody, type RsvpAnswer, type Sendable, type SendableBody } from "./content.ts";
import { sendAction } from "./conversation.ts";
import { VignetteError, wrap } from "./errors.ts";
import type { ExpiryTimers } from "./expiry.ts";
import { DeleteMessageDocument, MarkReadDocument, SetTypingDocument } from "./generated/graphql.ts";
import type { Groups } from "./groups.ts";
import type { MessageRecord, MessageStore } from "./message-store.ts";
import type { Address, Sender, SendResult } from "./messaging.ts";
import type { AccountStore } from "./store/types.ts";
import { snippetOf } from "./store/fold.ts";
import type { HttpTransport } from "./transport.ts";
import { UUID } from "./users.ts";

/** What react, edit, vote and rsvp answer, for 1:1 and group messages alike. */
export type SentAction = Pick<SendResult, "messageId" | "serverTimestamp" | "sentAt">;

export interface OutgoingDeps {
  self: Address;
  http: HttpTransport;
  store: MessageStore;
  /** Where this device's per-chat timers are kept. */
  kv: AccountStore;
  sender: Sender;
  groups: Groups;
  expiry: ExpiryTimers;
  resolveUser(who: string): Promise<string>;
  conversationId(who: string): Promise<string>;
}

const isGroupMessageId = (id: string) => id.startsWith("g:");

export class Outgoing {
  constructor(private readonly d: OutgoingDeps) {}

  async send(to: string, message: Sendable, opts: { expiresInSeconds?: number; replyTo?: string } = {}): Promise<SendResult> {
    const { store } = this.d;
    const body = outgoing(typeof message === "string" ? { kind: "text", text: message } : message);
    if (isAction(body)) throw new VignetteError(`send a ${body.kind} with react(), edit(), vote() or rsvp()`, "BAD_USER_INPUT");
    const peerUserId = await this.d.resolveUser(to);
    if (opts.expiresInSeconds === undefined) opts = { ...opts, expiresInSeconds: (await this.defaultTimer(peerUserId)) ?? undefined };
    let replyTo = null;
    if (opts.replyTo) {
      const quoted = await store.get(opts.replyTo);
      if (!quoted || quoted.peerUserId !== peerUserId || quoted.groupId)
        throw new VignetteError(`no message ${opts.replyTo} in the conversation with ${to} to reply to`, "NOT_FOUND");
      replyTo = { messageId: quoted.messageId, snippet: snippetOf(quoted.body) };
    }
    const r = await wrap(() => this.d.sender.send(peerUserId, body, { expiresInSeconds: opts.expiresInSeconds, ...(replyTo ? { replyTo } : {}) }));
    const expiresAt = opts.expiresInSeconds ? new Date(Date.parse(r.serverTimestamp) + opts.expiresInSeconds * 1000).toISOString() : null;
    const stored: MessageRecord = {
      messageId: r.messageId,
      conversationId: (await store.conversationWith(peerUserId)) ?? null,
      peerUserId,
      direction: "out",
      from: this.d.self,
      sentAt: r.sentAt,
      serverTimestamp: r.serverTimestamp,
      body,
      expiresAt,
      replyTo,
    };
    await store.put(stored);
    this.d.expiry.schedule(stored);
    return r;
  }

  async setDefaultTimer(who: string, seconds: number | null): Promise<void> {
    const { groups, kv } = this.d;
    if (UUID.test(who) && (await groups.get(who).catch(() => null))) {
      await groups.setTimer(who.toLowerCase(), seconds);
      return;
    }
    const peer = await this.d.resolveUser(who);
    if (seconds) await kv.set(`timer/${peer}`, new Uint8Array(Buffer.from(String(seconds))));
    else await kv.delete(`timer/${peer}`);
  }

  private async defaultTimer(peerUserId: string): Promise<number | null> {
    const raw = await this.d.kv.get(`timer/${peerUserId}`);
    return raw ? Number(Buffer.from(raw).toString()) : null;
  }

  react(messageId: string, emoji: string | null): Promise<SentAction> {
    return this.action({ kind: "reaction", messageId, emoji });
  }

  edit(messageId: string, text: string): Promise<SentAction> {
    return this.action({ kind: "edit", messageId, text });
  }

  vote(pollId: string, choices: number | number[]): Promise<SentAction> {
    const list = Array.isArray(choices) ? choices : [choices];
    return this.action({ kind: "vote", pollId, choices: [...new Set(list)].sort((a, b) => a - b) });
  }

  rsvp(eventId: string, answer: RsvpAnswer): Promise<SentAction> {
    return this.action({ kind: "rsvp", eventId, answer });
  }

  /** Sent in the conversation of the message it changes. */
  private async action(body: ActionBody): Promise<SentAction> {
    outgoing(body);
    return sendAction(this.d.store, this.d.self, body, (target) =>
      target.groupId ? this.d.groups.postAction(target.groupId, body) : wrap(() => this.d.sender.send(target.peerUserId, body)),
    );
  }

  async markRead(messageIds: string[]): Promise<number> {
    const group = messageIds.filter(isGroupMessageId);
    const direct = messageIds.filter((id) => !isGroupMessageId(id));
    let n = group.length ? await this.d.groups.markRead(group) : 0;
    if (direct.length) n += await wrap(async () => (await this.d.http.request(MarkReadDocument, { messageIds: direct })).markRead);
    return n;
  }

  async deleteMessage(messageId: string, forEveryone: boolean): Promise<boolean> {
    if (isGroupMessageId(messageId)) return this.d.groups.deleteMessage(messageId, forEveryone);
    const ok = await wrap(async () => (await this.d.http.request(DeleteMessageDocument, { messageId, forEveryone })).deleteMessage);
    await this.d.store.remove(messageId);
    this.d.expiry.clear(messageId);
    return ok;
  }

  async setTyping(who: string, isTyping: boolean): Promise<boolean> {
    const conversationId = await this.d.conversationId(who);
    return wrap(async () => (await this.d.http.request(SetTypingDocument, { conversationId, isTyping })).setTyping);
  }
}

/** A body the receiving SDK would refuse is refused here, as bad input. */
function outgoing(body: SendableBody): SendableBody {
  try {
    return checkOutgoing(body);
  } catch (err) {
    throw new VignetteError((err as Error).message, "BAD_USER_INPUT");
  }
}
