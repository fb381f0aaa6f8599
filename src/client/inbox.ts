// The inbox subscription's items, one at a time in arrival order: envelopes go through the receive pipeline
// (receive.ts), live envelopes to the call machine, group events to the groups, and receipts, deletions and device
// and key notices to the store and the app. Each item is acknowledged only once the app's handlers for it returned.
import { AckQueue } from "./acks.ts";
import type { Calls } from "./calls/calls.ts";
import { decodeContent } from "./content.ts";
import { Mutex } from "./emitter.ts";
import type { ExpiryTimers } from "./expiry.ts";
import { AckEnvelopesDocument, type InboxSubscription } from "./generated/graphql.ts";
import { KEY_PACKAGE_TARGET, type Groups } from "./groups.ts";
import type { Address, Sender } from "./messaging.ts";
import type { PreKeyMaintainer } from "./prekeys.ts";
import { receiveEnvelope, type ReceiveDeps } from "./receive.ts";
import type { HttpTransport } from "./transport.ts";

type InboxEvent = InboxSubscription["inbox"];
type LiveEnvelopeEvent = Extract<InboxEvent, { __typename: "LiveEnvelopeEvent" }>;

export interface InboxDeps extends Omit<ReceiveDeps, "ack" | "scheduleExpiry"> {
  http: HttpTransport;
  expiry: ExpiryTimers;
  sender: Sender;
  groups: Groups;
  calls: Calls;
  keys: PreKeyMaintainer;
  fail(err: unknown): void;
}

export class InboxPipeline {
  private queue = new Mutex();
  private acks: AckQueue;
  private receiving: ReceiveDeps;
  private closed = false;

  constructor(private readonly d: InboxDeps) {
    this.acks = new AckQueue((ids) => d.http.request(AckEnvelopesDocument, { ids }), d.fail);
    this.receiving = { ...d, ack: (id) => this.ack(id), scheduleExpiry: (m) => d.expiry.schedule(m) };
  }

  /** An item as the subscription delivers it: handled after those before it. */
  take(ev: InboxEvent): Promise<void> {
    return this.queue.run(() => this.handle(ev));
  }

  /** Queued, not awaited: the next item is handled while this one's acknowledgement is in flight (batched). */
  async ack(id: string): Promise<void> {
    void this.acks.add(id);
  }

  /** Items from now on are left unhandled and unacknowledged: the server hands them over again next time. */
  stop(): void {
    this.closed = true;
  }

  /** Lets the item being handled finish, then sends the acknowledgements still queued. */
  async drain(): Promise<void> {
    await this.queue.run(async () => {});
    await this.acks.flush();
  }

  private async handle(ev: InboxEvent): Promise<void> {
    if (this.closed) return;
    const { store, emit, groups } = this.d;
    switch (ev.__typename) {
      case "EnvelopeEvent":
        return receiveEnvelope(this.receiving, ev);
      case "LiveEnvelopeEvent":
        return this.handleLive(ev);
      case "ReceiptEvent": {
        // One event may stand for several messages (receipts of one batch are coalesced): the app gets one each.
        const field = ev.kind === "READ" ? "readAt" : "deliveredAt";
        for (const messageId of ev.messageIds) {
          await store.receipt(messageId, { [field]: ev.at });
          await emit("receipt", { messageId, conversationId: ev.conversationId, userId: ev.userId, kind: ev.kind, at: ev.at });
        }
        return this.ack(ev.id);
      }
      case "MessageDeletedEvent":
        await store.remove(ev.messageId);
        this.d.expiry.clear(ev.messageId);
        await emit("deleted", { messageId: ev.messageId, conversationId: ev.conversationId, byUserId: ev.deletedByUserId });
        return this.ack(ev.id);
      case "DeviceListChangedEvent":
        this.d.sender.forgetDevices(ev.userId);
        await emit("deviceListChanged", { userId: ev.userId });
        // Group upkeep (adding own new devices, removing deactivated ones) must not hold up the inbox.
        void groups.deviceListChanged(ev.userId).catch((e) => this.d.fail(e));
        return this.ack(ev.id);
      case "GroupEvent":
        return groups.handle({ ...ev, kind: ev.groupEventKind });
      case "KeyPackagesLowEvent":
        await groups.mls.keyPackages.replenish(KEY_PACKAGE_TARGET);
        return;
      case "PreKeysLowEvent": {
        const n = await this.d.keys.topUp();
        if (n.oneTimePreKeys || n.oneTimeKyberPreKeys) await emit("preKeysToppedUp", n);
        return;
      }
      default: {
        const other = ev as { id?: string | null };
        if (other.id) return this.ack(other.id); // kinds this SDK does not handle yet
      }
    }
  }

  /** A live-only envelope: decrypted and handed to the call machine; never stored, never acknowledged. */
  private async handleLive(ev: LiveEnvelopeEvent): Promise<void> {
    const env = ev.envelope;
    const from = { userId: env.senderUserId, deviceId: env.senderDeviceId };
    let content;
    try {
      content = decodeContent(await this.decryptLive(from, env.type, env.body));
    } catch (err) {
      return this.d.emit("undecryptable", { envelopeId: env.id, from, reason: (err as Error)?.message ?? String(err) });
    }
    // Only call signaling travels live in this SDK; other live content is not for it.
    if (content.body.kind === "call") await this.d.calls.receive(from, content.body.signal, content.sentTo);
  }

  /** Its ratchet step is committed to the store in one transaction. */
  private decryptLive(from: Address, type: number, body: string) {
    const { crypto, staged, store } = this.d;
    return crypto.run(async () => {
      staged.begin();
      let p;
      try {
        p = await this.d.signal().decrypt(this.d.self, from, type, body);
      } catch (err) {
        staged.rollback();
        throw err;
      }
      await store.apply({ kv: staged.take() });
      return p;
    });
  }
}
