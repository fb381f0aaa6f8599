// One device's live inbox: everything queued, in order, then live events, with nothing lost or doubled at the seam.
// Every connected device holds one for as long as it is connected, so it is the Feed itself (one object, prototype
// methods) rather than a set of closures around one: under tsx's keepNames each named closure also carries its own
// property table, and those were most of what an idle connection cost.
import type { Bus, Unsubscribe } from "./bus.ts";
import { channels } from "./channels.ts";
import type { Logger } from "../logger.ts";
import type { Actor } from "../deps.ts";
import { Feed, type FeedBudget } from "./feed.ts";
import type { InboxEventPayload } from "../inbox/events.ts";
import type { PreKeyStatus } from "../keys/claims.ts";
import type { RecheckedInbox } from "./recheck.ts";

/** Another store feeding the inbox (group events): pushes into the stream until closed. */
export type FollowSource = (actor: Actor, sink: Feed<InboxEventPayload>) => { close(): unknown };

export interface InboxStreamDeps {
  bus: Bus;
  logger: Logger;
  /** Items held for a consumer that does not read, and the bytes they may weigh (see Feed). */
  limit: number;
  budget: FeedBudget<InboxEventPayload>;
  read(actor: Actor, opts: { after?: bigint; limit: number }): Promise<InboxEventPayload[]>;
  keyStatus(actor: Actor): Promise<PreKeyStatus>;
  preKeysLowEvent(s: PreKeyStatus): InboxEventPayload;
  sources: FollowSource[];
  /** The streams open on this node, re-read after a bus reconnect (one bus listener for all of them). */
  open: Set<InboxStream>;
}

// Queue rows read per query on replay: at most 100 x MAX_ENVELOPE_BYTES held in memory per replaying subscriber.
const PAGE = 100;
// Ids this subscription already emitted, to skip them at the replay/live seam and after a bus reconnect. Past the
// cap the oldest half is forgotten: the worst case is a repeat the client drops by id, never a loss.
const EMITTED_CAP = 50_000;

const byId = (a: InboxEventPayload, b: InboxEventPayload) =>
  a.id === null ? (b.id === null ? 0 : 1) : b.id === null ? -1 : Number(BigInt(a.id) - BigInt(b.id));

/**
 * The bus channel is subscribed FIRST and live events are held while the queue is read; anything committed after
 * the read started is therefore either in the read or in the held events, and ids already emitted are skipped.
 * After a bus reconnect (live events may have been missed) the queue is read again the same way.
 */
export class InboxStream extends Feed<InboxEventPayload> implements RecheckedInbox {
  // Allocated on the first event with an id: an idle connection has none.
  private emitted: Set<string> | null = null;
  /** The highest queue id emitted, and the re-check's record of it (live/recheck.ts). */
  top = 0n;
  recheckFloors: [bigint, bigint] | null = null;
  suspects: Set<string> | null = null;
  private held: InboxEventPayload[] | null = [];
  private heldSize = 0;
  private again = false;
  private replaying: Promise<void> | null = null;
  private unsubscribe: Unsubscribe | null = null;
  private followed: { close(): unknown }[] | null = null;

  constructor(
    private readonly deps: InboxStreamDeps,
    readonly actor: Actor,
    onOverflow?: () => void,
  ) {
    super(deps.limit, deps.budget, onOverflow);
  }

  /** Subscribes, tells a low key stock, replays the queue and starts the other sources; failures end the stream. */
  start(): this {
    this.open().catch((err) => this.fail(err));
    return this;
  }

  /** After a bus reconnect: hold live events again and re-read the queue. */
  resync(): void {
    if (!this.held) this.held = [];
    this.replay();
  }

  get settled(): boolean {
    return this.held === null && this.replaying === null && !this.closed;
  }

  /**
   * A re-check found these ids in the queue. One never emitted may be a live event still on its way: only one that is
   * still missing at the next look means the event was lost, and the queue is read again.
   */
  found(ids: string[]): boolean {
    const missing = ids.filter((id) => !this.emitted?.has(id));
    const confirmed = missing.some((id) => this.suspects?.has(id));
    this.suspects = missing.length > 0 && !confirmed ? new Set(missing) : null;
    if (confirmed) this.resync();
    return confirmed;
  }

  private async open(): Promise<void> {
    const { bus, sources } = this.deps;
    const unsubscribe: Unsubscribe = await bus.subscribe<InboxEventPayload>(
      channels.device(this.actor.userId, this.actor.deviceId),
      (e) => this.onLive(e),
    );
    if (this.finished) return void (await unsubscribe());
    this.unsubscribe = unsubscribe;
    this.deps.open.add(this);
    const status = await this.deps.keyStatus(this.actor);
    if (this.finished) return;
    if (status.isLow) this.push(this.deps.preKeysLowEvent(status));
    this.replay();
    this.followed = sources.map((source) => source(this.actor, this));
  }

  // Fields rather than onClose closures: every connected device holds one of these.
  protected override release(): Promise<unknown> {
    this.deps.open.delete(this);
    const { unsubscribe, followed } = this;
    this.unsubscribe = this.followed = null;
    return Promise.allSettled([async () => unsubscribe?.(), ...(followed ?? []).map((f) => async () => f.close())].map((c) => c()));
  }

  private emit(e: InboxEventPayload): void {
    if (e.expiresAt && Date.parse(e.expiresAt) <= Date.now()) return;
    if (e.id !== null) {
      const emitted = (this.emitted ??= new Set());
      if (emitted.has(e.id)) return;
      emitted.add(e.id);
      const n = BigInt(e.id);
      if (n > this.top) this.top = n;
      if (emitted.size > EMITTED_CAP) {
        let n = 0;
        for (const id of emitted) {
          if (n++ >= EMITTED_CAP / 2) break;
          emitted.delete(id);
        }
      }
    }
    this.push(e);
  }

  private onLive(e: InboxEventPayload): void {
    if (!this.held) return this.emit(e);
    // Everything with an id is in the queue too: past the bound, drop what is held and read the queue again.
    const size = this.deps.budget.sizeOf(e);
    if (this.held.length < this.deps.limit && this.heldSize + size <= this.deps.budget.maxBytes) {
      this.held.push(e);
      this.heldSize += size;
    } else {
      this.again = true;
    }
  }

  private async replayOnce(): Promise<void> {
    this.held ??= [];
    this.again = false;
    let after = 0n;
    for (;;) {
      await this.room();
      if (this.closed) return;
      const page = await this.deps.read(this.actor, { after, limit: PAGE });
      for (const e of page) {
        // A replay waits for the consumer instead of overrunning its bound.
        await this.room();
        if (this.closed) return;
        this.emit(e);
      }
      if (page.length < PAGE) break;
      after = BigInt(page[page.length - 1].id!);
    }
    const buffered = this.held.sort(byId);
    this.held = null;
    this.heldSize = 0;
    for (const e of buffered) this.emit(e);
  }

  private replay(): void {
    this.again = true;
    this.replaying ??= (async () => {
      try {
        while (this.again && !this.closed) await this.replayOnce();
      } finally {
        this.replaying = null;
      }
    })().catch((err) => {
      this.deps.logger.warn({ err: (err as Error).message }, "inbox replay failed");
      this.fail(err);
    });
  }
}
