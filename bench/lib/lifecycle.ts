// One 1:1 message's whole life as the SDK runs it, for bench:send: send -> the envelope arrives on the recipient's
// inbox subscription -> the recipient acknowledges it (batched as the SDK batches, src/client/acks.ts) -> the
// DELIVERED receipt arrives on the sender's subscription -> the sender acknowledges the receipt. A message counts
// as done when the call carrying the receipt's acknowledgement was answered.
import { AckEnvelopesDocument, InboxDocument } from "../../src/client/generated/graphql.ts";
import { AckQueue } from "../../src/client/acks.ts";
import { envelopeNumber } from "./numbered-body.ts";
import { operation, type GqlSocket } from "./gqlws.ts";

type Ev = { __typename?: string; id?: string; messageId?: string; messageIds?: string[]; kind?: string; envelope?: { messageId: string } };

export class Lifecycle {
  /** true: both sides acknowledge (the lifecycle); false: nobody does (send-only). */
  acking = true;
  readonly sent = new Map<number, number>(); // envelope number -> send time
  private readonly awaitingReceipt = new Map<string, { t0: number; td: number }>(); // message id -> times
  private outstandingAcks = 0;
  deliver: number[] = []; // send -> envelope on the recipient's socket
  deliverSentAt: number[] = []; // the send time of each deliver[] entry, for BENCH_TIMELINE_MS
  receipt: number[] = []; // envelope delivered -> its receipt on the sender's socket
  total: number[] = []; // send -> the sender's receipt acknowledgement answered
  ackCalls = 0;
  ackFailures = 0;
  delivered = 0;
  completed = 0;
  lastDelivery = 0;
  lastCompletion = 0;

  constructor(senders: GqlSocket[], receivers: GqlSocket[]) {
    const inbox = operation(InboxDocument);
    const ackQuery = operation(AckEnvelopesDocument);
    const queue = (s: GqlSocket) =>
      new AckQueue(
        (ids) => (this.ackCalls++, s.request(ackQuery, { ids })),
        () => this.ackFailures++,
      );
    receivers.forEach((r) => {
      const acks = queue(r);
      r.subscribe(inbox, (p) => this.onRecipientEvent(p, acks));
    });
    senders.forEach((s) => {
      const acks = queue(s);
      s.subscribe(inbox, (p) => this.onSenderEvent(p, acks));
    });
  }

  private onRecipientEvent(p: { data?: unknown }, acks: AckQueue) {
    const idx = envelopeNumber(p);
    if (idx === undefined) return;
    const t0 = this.sent.get(idx);
    if (t0 === undefined) return;
    this.sent.delete(idx);
    const now = performance.now();
    this.lastDelivery = now;
    this.deliver.push(now - t0);
    this.deliverSentAt.push(t0);
    this.delivered++;
    if (!this.acking) return;
    const ev = (p.data as { inbox: Ev }).inbox;
    this.awaitingReceipt.set(ev.envelope!.messageId, { t0, td: now });
    this.outstandingAcks++;
    void acks.add(ev.id!).then(() => this.outstandingAcks--);
  }

  private onSenderEvent(p: { data?: unknown }, acks: AckQueue) {
    const ev = (p.data as { inbox?: Ev })?.inbox;
    if (ev?.__typename !== "ReceiptEvent" || ev.kind !== "DELIVERED") return;
    const now = performance.now();
    const mine: { t0: number }[] = [];
    for (const id of ev.messageIds ?? [ev.messageId!]) {
      const w = this.awaitingReceipt.get(id);
      if (!w) continue;
      this.awaitingReceipt.delete(id);
      this.receipt.push(now - w.td);
      mine.push(w);
    }
    this.outstandingAcks++;
    void acks.add(ev.id!).then((ok) => {
      this.outstandingAcks--;
      if (!ok) return;
      const done = performance.now();
      this.lastCompletion = done;
      this.completed += mine.length;
      for (const w of mine) this.total.push(done - w.t0);
    });
  }

  /** Starts a step's counts afresh. */
  reset(): void {
    this.deliver = [];
    this.deliverSentAt = [];
    this.receipt = [];
    this.total = [];
    this.delivered = this.completed = this.ackCalls = this.ackFailures = 0;
  }

  /** Nothing in flight: every sent envelope arrived, every receipt arrived, every acknowledgement was answered. */
  get settled(): boolean {
    return this.sent.size === 0 && this.outstandingAcks === 0 && (!this.acking || this.awaitingReceipt.size === 0);
  }

  /** Gives up on what is still in flight (after the bounded drain); returns how many messages that was. */
  abandon(): { undelivered: number; noReceipt: number } {
    const out = { undelivered: this.sent.size, noReceipt: this.awaitingReceipt.size };
    this.sent.clear();
    this.awaitingReceipt.clear();
    return out;
  }
}
