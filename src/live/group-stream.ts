// One device's live group events: queued events first, then live ones. Every connected device holds one of these
// (inside its inbox stream), most of them in no group at all, so it is a class whose maps exist only once the
// device has a group: per-connection closures cost far more (each named one carries its own property table under
// tsx's keepNames) than an object with prototype methods.
import type { Bus, Unsubscribe } from "./bus.ts";
import { channels } from "./channels.ts";
import type { Logger } from "../logger.ts";
import type { Actor } from "../deps.ts";
import type { GroupEventPayload } from "../groups/events.ts";
import { deviceKey } from "../groups/mls-framing.ts";
import type { RecheckedGroups } from "./recheck.ts";

export interface Membership {
  joinedEpoch: number;
  fromSeq: bigint;
  untilSeq: bigint | null;
}

export interface GroupStreamDeps {
  bus: Bus;
  logger: Logger;
  memberships(device: Actor, groupId?: string): Promise<Map<string, Membership>>;
  pending(device: Actor, opts: { groupId?: string; afterSeq?: bigint; limit?: number }): Promise<GroupEventPayload[]>;
  /** The streams open on this node, for the re-check that finds lost live events (live/recheck.ts). */
  open?: Set<GroupStream>;
}

/** Where a group stream delivers: a Feed (the inbox stream's, or the groupEvents subscription's own). */
export interface GroupSink {
  push(e: GroupEventPayload): void;
  fail(err: unknown): void;
  /** Resolves when the consumer has room: catch-up reads its next page only then. */
  room?(): Promise<void>;
}

// Events read per query on catch-up: at most 100 x MAX_GROUP_MESSAGE_BYTES held per catching-up subscriber.
const PAGE = 100;
// Concurrent sends to one group commit in sequence order but may be published out of it. A subscriber holds an event
// that skips ahead this long (and at most this many per group) for the missing ones to arrive live before it
// re-reads the group from the database.
const GAP_WAIT_MS = 100;
const MAX_AHEAD = 256;

/**
 * Live events arrive once per group channel; a subscriber emits one directly only when it is the next sequence number
 * it expects for that group. One that skips ahead waits briefly for the gap to fill live; a gap that stays re-reads
 * the database for that group (which applies every visibility rule).
 */
export class GroupStream implements RecheckedGroups {
  private lastSeq: Map<string, number> | null = null;
  /** Per group, the sequence number a re-check last caught up to (events past lastSeq this device may not see). */
  private rechecked: Map<string, number> | null = null;
  /** Per group, where a re-check found this stream behind (caught up if it still is at the next look). */
  private suspects: Map<string, number> | null = null;
  private member: Map<string, Membership> | null = null;
  private groupSubs: Map<string, Promise<Unsubscribe>> | null = null;
  private chains: Map<string, Promise<void>> | null = null;
  private chainsBusy: Set<string> | null = null;
  private onGroupEvent: ((e: GroupEventPayload) => void) | null = null;
  /** Per group, live events ahead of a gap, by sequence number, and the timer that gives up waiting. */
  private ahead: Map<string, { events: Map<number, GroupEventPayload>; timer: NodeJS.Timeout }> | null = null;
  private stopDevice: Unsubscribe | null = null;
  private ready: Promise<void> | null;
  private closed = false;

  constructor(
    private readonly deps: GroupStreamDeps,
    readonly device: Actor,
    private readonly sink: GroupSink,
  ) {
    deps.open?.add(this);
    this.ready = this.start().then(
      () => void (this.ready = null),
      (err) => sink.fail(err),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.open?.delete(this);
    for (const groupId of [...(this.ahead?.keys() ?? [])]) this.dropAhead(groupId);
    await this.ready;
    await this.stopDevice?.();
    if (this.groupSubs) for (const s of this.groupSubs.values()) await s.then((off) => off(), () => {});
    this.groupSubs?.clear();
  }

  private async start(): Promise<void> {
    this.stopDevice = await this.deps.bus.subscribe<{ kind: string; groupId: string }>(
      channels.groupJoins(this.device.userId, this.device.deviceId),
      (msg) => {
        if (msg?.kind !== "groupJoined" || this.closed) return;
        const groupId = msg.groupId;
        // A new membership: listen to the group first, then read what is stored, so nothing falls in between.
        this.watchGroup(groupId).then(
          () => this.trackedCatchUp(groupId),
          (err) => this.sink.fail(err),
        );
      },
    );
    const all = await this.deps.memberships(this.device);
    for (const [groupId, m] of all) {
      (this.member ??= new Map()).set(groupId, m);
      if (m.untilSeq === null) await this.watchGroup(groupId);
      this.trackedCatchUp(groupId);
    }
  }

  recheck(groupId: string, top: number, ended: boolean): boolean {
    if (this.closed || this.ready) return false;
    if (!this.member?.has(groupId)) {
      // A membership whose groupJoined event was lost: listen to the group, then read it, as on that event.
      if (ended || this.groupSubs?.has(groupId)) return false;
      this.watchGroup(groupId).then(
        () => this.trackedCatchUp(groupId),
        (err: Error) => this.deps.logger.warn({ err: err.message }, "group subscription failed"),
      );
      return true;
    }
    const suspect = this.suspects?.get(groupId);
    this.suspects?.delete(groupId);
    if (top <= Math.max(this.last(groupId), this.rechecked?.get(groupId) ?? 0)) return false;
    // Waiting for a gap to fill, or reading already: that read sees everything the re-check saw.
    if (this.chainsBusy?.has(groupId) || this.ahead?.has(groupId)) return false;
    // Behind for the first time: the live events may be on their way. Behind the same point at the next look: lost.
    if (suspect === undefined || this.last(groupId) >= suspect) {
      (this.suspects ??= new Map()).set(groupId, top);
      return false;
    }
    (this.rechecked ??= new Map()).set(groupId, top);
    this.trackedCatchUp(groupId);
    return true;
  }

  private emit(e: GroupEventPayload): void {
    (this.lastSeq ??= new Map()).set(e.groupId, e.seq);
    this.sink.push(e);
    if (e.removed?.includes(deviceKey(this.device))) this.stopGroup(e.groupId);
  }

  private stopGroup(groupId: string): void {
    this.dropAhead(groupId);
    this.rechecked?.delete(groupId);
    this.suspects?.delete(groupId);
    const s = this.groupSubs?.get(groupId);
    this.groupSubs?.delete(groupId);
    this.member?.delete(groupId);
    s?.then((off) => off()).catch(() => {}); // a failed subscription has nothing to undo
  }

  private last(groupId: string): number {
    return this.lastSeq?.get(groupId) ?? 0;
  }

  private catchUp(groupId: string): void {
    const chains = (this.chains ??= new Map());
    const run = (chains.get(groupId) ?? Promise.resolve()).then(async () => {
      if (this.closed) return;
      const fresh = await this.deps.memberships(this.device, groupId);
      const m = fresh.get(groupId);
      if (!m) return;
      (this.member ??= new Map()).set(groupId, m);
      for (;;) {
        // A backlog is read a page at a time as the consumer takes it, never all at once into memory.
        await this.sink.room?.();
        if (this.closed) return;
        const batch = await this.deps.pending(this.device, { groupId, afterSeq: BigInt(this.last(groupId)), limit: PAGE });
        for (const e of batch) {
          // Event by event too: a page of large events must not overrun the consumer's byte budget.
          await this.sink.room?.();
          if (this.closed) return;
          if (e.seq > this.last(groupId)) this.emit(e);
        }
        if (batch.length < PAGE) break;
      }
      if (m.untilSeq !== null && this.last(groupId) >= Number(m.untilSeq)) this.stopGroup(groupId);
    });
    const settled: Promise<void> = run.then(
      () => void (chains.get(groupId) === settled && chains.delete(groupId)),
      (err: Error) => {
        this.deps.logger.warn({ err: err.message }, "group catch-up failed");
        if (chains.get(groupId) === settled) chains.delete(groupId);
      },
    );
    chains.set(groupId, settled);
  }

  private handle(e: GroupEventPayload): void {
    const m = this.member?.get(e.groupId);
    if (!m || this.closed) return;
    const last = this.last(e.groupId);
    if (e.seq <= last) return;
    if (this.chainsBusy?.has(e.groupId)) return this.trackedCatchUp(e.groupId);
    if (e.seq === last + 1) {
      this.accept(e, m);
      // The events this one was holding back, as far as they are contiguous now.
      const held = this.ahead?.get(e.groupId);
      if (!held) return;
      // Stops early if one of them removed this device from the group (stopGroup forgot the rest).
      while (this.ahead?.get(e.groupId) === held) {
        const next = held.events.get(this.last(e.groupId) + 1);
        if (!next) break;
        held.events.delete(next.seq);
        this.accept(next, m);
      }
      if (held.events.size === 0) this.dropAhead(e.groupId);
      return;
    }
    let held = this.ahead?.get(e.groupId);
    if (!held) {
      const timer = setTimeout(() => {
        if (!this.ahead?.has(e.groupId)) return;
        this.dropAhead(e.groupId);
        if (!this.closed) this.trackedCatchUp(e.groupId);
      }, GAP_WAIT_MS);
      held = { events: new Map(), timer };
      (this.ahead ??= new Map()).set(e.groupId, held);
    }
    if (held.events.size >= MAX_AHEAD) {
      this.dropAhead(e.groupId);
      return this.trackedCatchUp(e.groupId);
    }
    held.events.set(e.seq, e);
  }

  /** Emits the next event of a group; visibility needs only what this subscriber already knows. */
  private accept(e: GroupEventPayload, m: Membership): void {
    if (e.epoch < m.joinedEpoch) return void (this.lastSeq ??= new Map()).set(e.groupId, e.seq);
    this.emit(e);
  }

  /** Forgets what was held for a group (the database read that follows, if any, has it all). */
  private dropAhead(groupId: string): void {
    const held = this.ahead?.get(groupId);
    if (!held) return;
    clearTimeout(held.timer);
    this.ahead!.delete(groupId);
  }

  private trackedCatchUp(groupId: string): void {
    const busy = (this.chainsBusy ??= new Set());
    busy.add(groupId);
    this.catchUp(groupId);
    void this.chains!.get(groupId)!.then(() => busy.delete(groupId));
  }

  private watchGroup(groupId: string): Promise<Unsubscribe> {
    const subs = (this.groupSubs ??= new Map());
    let s = subs.get(groupId);
    if (!s) {
      this.onGroupEvent ??= (e) => this.handle(e);
      const pending = this.deps.bus.subscribe<GroupEventPayload>(channels.group(groupId), this.onGroupEvent);
      subs.set(groupId, (s = pending));
      // A failed SUBSCRIBE leaves no entry: close() and stopGroup() then only undo subscriptions that happened.
      pending.catch(() => subs.get(groupId) === pending && subs.delete(groupId));
    }
    return s;
  }
}
