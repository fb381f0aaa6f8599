// The receiving half of client.groups: what one group event from the inbox means for the app (a message, a
// reaction or edit folded into one, a membership change, a deletion), persisted before the event is marked processed,
// handed to the app, and only then acknowledged, so a crash in between hands it over again instead of losing it.
import { actionEvent, receivedAction, type ActionContext, type EditEvent, type ReactionEvent, type RsvpEvent, type VoteEvent } from "./conversation.ts";
import { decodeContent, isAction, type ActionBody, type Content } from "./content.ts";
import { VignetteError } from "./errors.ts";
import type { MessageRecord, MessageStore } from "./message-store.ts";
import type { GroupEventData, GroupUpdate, MlsGroupManager } from "./mls/groups.ts";
import type { KeyValueStore } from "./signal/kv.ts";
import type { HttpTransport } from "./transport.ts";

export interface ReceivedGroupMessage extends MessageRecord {
  groupId: string;
  eventId: string;
  /** Sent by this account from another of its devices. */
  isSync: boolean;
}

export type GroupChangeKind = "joined" | "membersChanged" | "left" | "removed" | "infoChanged";

export interface GroupChangedEvent {
  groupId: string;
  kind: GroupChangeKind;
  epoch: number;
  byUserId: string | null;
}

export interface GroupEvents {
  groupMessage: ReceivedGroupMessage;
  groupChanged: GroupChangedEvent;
  deleted: { messageId: string; conversationId: string; byUserId: string };
  reaction: ReactionEvent;
  edit: EditEvent;
  vote: VoteEvent;
  rsvp: RsvpEvent;
}

/** What the client lends the groups: its identity, stores, transport and event emitter. */
export interface GroupsHost {
  self: { userId: string; deviceId: number };
  kv: KeyValueStore;
  http: HttpTransport;
  store: MessageStore;
  resolveUser(who: string): Promise<string>;
  emit<K extends keyof GroupEvents>(event: K, value: GroupEvents[K]): Promise<void>;
  /** A message was stored: arm its self-destruct timer (or, when gone, disarm it). */
  stored(m: MessageRecord): void;
  unstored(messageId: string): void;
  fail(err: unknown): void;
  ack(id: string): Promise<void>;
}

/** What one processed event means for the app, persisted until the app has been given it. */
interface Outcome {
  message?: ReceivedGroupMessage;
  /** A reaction, edit, vote or RSVP, already folded into the stored message it changes. */
  action?: { ctx: ActionContext; body: ActionBody };
  change?: GroupChangedEvent;
  deleted?: GroupEvents["deleted"];
}

const json = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v), "utf8"));
const outcomeKey = (eventId: string) => `gout/${eventId}`;

/** What the receiving half asks of the rest of client.groups. */
export interface GroupLookups {
  /** The group as this account sees it now (null once it left or was removed). */
  get(groupId: string): Promise<unknown | null>;
  /** Its name, description or timer changed: forget what is cached. */
  infoChanged(groupId: string): void;
  /** Someone left: remove the leaves of users no longer on the roster. */
  removeDeparted(groupId: string): Promise<void>;
}

export class GroupInbox {
  constructor(
    private readonly host: GroupsHost,
    private readonly mls: MlsGroupManager,
    private readonly groups: GroupLookups,
  ) {}

  /**
   * One group event from the inbox: processed (unless it was already), handed to the app, then acknowledged. A crash
   * after processing leaves its outcome stored, so the redelivered event hands it over again instead of being lost.
   */
  async handle(event: GroupEventData): Promise<void> {
    let outcome = await this.outcome(event.id);
    if (!outcome) {
      try {
        await this.mls.handle(event);
      } catch (err) {
        // An event this device cannot process never will be; report it rather than block the queue behind it.
        this.host.fail(new VignetteError(`group event ${event.id} could not be processed: ${(err as Error).message}`));
      }
      outcome = await this.outcome(event.id);
    }
    const m = outcome?.message;
    if (m && m.expiresAt && Date.parse(m.expiresAt) <= Date.now()) await this.host.store.remove(m.messageId);
    else if (m) {
      await this.host.emit("groupMessage", m);
      this.host.stored(m);
    }
    if (outcome?.action) {
      const e = await actionEvent(this.host.store, outcome.action.ctx, outcome.action.body);
      if (e) await this.host.emit(e[0], e[1] as never);
    }
    if (outcome?.change) await this.host.emit("groupChanged", outcome.change);
    if (outcome?.deleted) {
      await this.host.store.remove(outcome.deleted.messageId);
      this.host.unstored(outcome.deleted.messageId);
      await this.host.emit("deleted", outcome.deleted);
    }
    await this.host.kv.delete(outcomeKey(event.id));
    await this.host.ack(event.id);
    if (outcome?.change?.kind === "membersChanged" && outcome.change.byUserId !== this.host.self.userId) {
      void this.groups.removeDeparted(event.groupId).catch(() => {});
    }
  }

  private async outcome(eventId: string): Promise<Outcome | null> {
    const raw = await this.host.kv.get(outcomeKey(eventId));
    return raw ? (JSON.parse(Buffer.from(raw).toString("utf8")) as Outcome) : null;
  }

  /** Runs inside the group manager, before the event is marked processed: stores what the event means. */
  async record(u: GroupUpdate): Promise<void> {
    const outcome: Outcome = {};
    const change = (kind: GroupChangeKind): GroupChangedEvent => ({ groupId: u.groupId, kind, epoch: u.epoch, byUserId: u.senderUserId });
    const content = u.kind === "APPLICATION" && u.plaintext ? decoded(u.plaintext) : null;
    if (content && isAction(content.body)) {
      const ctx: ActionContext = { messageId: u.eventId, from: sender(u), serverTimestamp: serverTime(u), conversation: u.groupId };
      // Refused ones (no such message here, not its sender, ...) are acknowledged and dropped, as in 1:1.
      const changes = await receivedAction(this.host.store, ctx, content.body);
      if (changes) {
        await this.host.store.apply(changes.batch);
        outcome.action = { ctx, body: content.body };
      }
    } else if (content) {
      const m = this.toMessage(u, content);
      if (m) {
        await this.host.store.put(stripped(m));
        outcome.message = m;
      }
    } else if (u.kind === "WELCOME" && u.joined) outcome.change = change("joined");
    else if (u.kind === "COMMIT" && u.removed) outcome.change = change("removed");
    else if (u.kind === "INFO_CHANGED") {
      this.groups.infoChanged(u.groupId);
      outcome.change = change("infoChanged");
    } else if (u.kind === "MESSAGE_DELETED" && u.refersTo) {
      outcome.deleted = { messageId: u.refersTo, conversationId: u.groupId, byUserId: u.senderUserId ?? "" };
    }
    else if (u.kind === "MEMBERS_CHANGED") {
      // This account leaving ends its devices' view of the group with this event.
      const left = u.senderUserId === this.host.self.userId && !(await this.groups.get(u.groupId).catch(() => null));
      if (left) await this.host.kv.delete(`mls:group:${u.groupId}`);
      outcome.change = change(left ? "left" : "membersChanged");
    }
    if (outcome.message || outcome.action || outcome.change || outcome.deleted) await this.host.kv.set(outcomeKey(u.eventId), json(outcome));
  }

  private toMessage(u: GroupUpdate, content: Content): ReceivedGroupMessage {
    const serverTimestamp = serverTime(u);
    const from = sender(u);
    const isSync = from.userId === this.host.self.userId;
    return {
      eventId: u.eventId,
      isSync,
      messageId: u.eventId,
      groupId: u.groupId,
      conversationId: u.groupId,
      peerUserId: u.groupId,
      direction: isSync ? "out" : "in",
      from,
      sentAt: content.sentAt,
      serverTimestamp,
      body: content.body,
      expiresAt: expiry(serverTimestamp, content.expiresInSeconds),
    };
  }
}

function decoded(plaintext: Uint8Array): Content | null {
  try {
    return decodeContent(plaintext);
  } catch {
    return null;
  }
}

const sender = (u: GroupUpdate) => ({ userId: u.senderUserId ?? "", deviceId: u.senderDeviceId ?? 0 });
const serverTime = (u: GroupUpdate) => u.serverTimestamp ?? new Date().toISOString();

export function expiry(serverTimestamp: string, seconds?: number): string | null {
  return seconds ? new Date(Date.parse(serverTimestamp) + seconds * 1000).toISOString() : null;
}

function stripped(m: ReceivedGroupMessage): MessageRecord {
  const { eventId: _e, isSync: _s, ...stored } = m;
  return stored;
}
