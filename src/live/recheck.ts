// Live events lost other than by a bus reconnect (a publish that failed, a node that died between its commit and
// its publish) are found by looking in the database on a timer, one statement per node for all its streams, and
// re-read by the streams that missed something. Nothing here is per stream: a node with 100k idle devices runs one
// cheap query an interval, not 100k.
import type { Actor } from "../deps.ts";
import type { Logger } from "../logger.ts";

/** Devices asked about in one statement: bounds the parameter arrays of a node with very many streams. */
export const RECHECK_CHUNK = 5_000;

export function chunks<T>(items: T[], size = RECHECK_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export const actorKey = (a: Actor) => `${a.userId}:${a.deviceId}`;

/**
 * Whether a round must look at every queue, given the id counter of the queue table (a sequence: an insert draws a
 * number before it commits, and numbers only grow). If the counter has not moved for two rounds, nothing was
 * inserted in that time, and what was drawn before had (unless a transaction ran longer than an interval) committed
 * and been looked at by the round after: the round may skip.
 */
export class QuietGate {
  private seen: (bigint | null)[] = [null, null];
  /** Some stream holds suspects: the next round looks even if the counter stood still. */
  suspects = false;

  due(counter: bigint): boolean {
    const [older, newer] = this.seen;
    this.seen = [newer, counter];
    return older === null || older !== counter || newer !== counter;
  }
}

/**
 * A stream's floor for the next look: the highest id it had emitted two looks ago. Ids are drawn before commit, so
 * an item may commit after a later one was emitted live; looking behind by two intervals still finds it.
 * `floors` is the stream's record ([two looks ago, one look ago]); returns the floor to use and the new record.
 */
export function nextFloor(floors: readonly [bigint, bigint] | null, top: bigint): { floor: bigint; floors: [bigint, bigint] } {
  const [older, newer] = floors ?? [0n, 0n];
  return { floor: older, floors: [newer, top] };
}

/** What a queue stream exposes to the re-check (InboxStream). */
export interface RecheckedInbox {
  readonly actor: Actor;
  /** Not replaying and not closed: a replay in progress reads the queue anyway. */
  readonly settled: boolean;
  /** The highest queue id it emitted. */
  readonly top: bigint;
  recheckFloors: [bigint, bigint] | null;
  /** Ids the last look found that it had not emitted (a live event may still be on its way to them). */
  readonly suspects: ReadonlySet<string> | null;
  /** The ids found after its floor; re-reads the queue (and answers true) if one was a suspect and still is. */
  found(ids: string[]): boolean;
}

export interface InboxRecheckStore {
  lastId(): Promise<bigint>;
  idsAfter(devices: { userId: string; deviceId: number; after: bigint }[], perDevice: number): Promise<{ userId: string; deviceId: number; id: string }[]>;
}

// Ids read per device and statement: an up-to-date stream has few unacknowledged items above a floor two intervals
// old. Past MAX_PAGES of them (a device that acknowledges nothing while thousands arrive) the rest waits for the
// floor of a later look, or for the next subscribe.
const IDS_PER_DEVICE = 64;
const MAX_PAGES = 16;

/** One look at every settled inbox stream of the node (skipped while the queue table is quiet). */
export async function recheckInboxes(open: Iterable<RecheckedInbox>, store: InboxRecheckStore, gate: QuietGate): Promise<number> {
  // A suspect needs a second look whatever the counter says.
  const due = gate.due(await store.lastId());
  if (!due && !gate.suspects) return 0;
  gate.suspects = false;
  const byDevice = new Map<string, { streams: RecheckedInbox[]; after: bigint }>();
  for (const s of open) {
    if (!s.settled) continue;
    const next = nextFloor(s.recheckFloors, s.top);
    s.recheckFloors = next.floors;
    const floor = lowest(next.floor, s.suspects);
    const k = actorKey(s.actor);
    const entry = byDevice.get(k);
    if (entry) {
      entry.streams.push(s);
      if (floor < entry.after) entry.after = floor;
    } else byDevice.set(k, { streams: [s], after: floor });
  }
  let resynced = 0;
  const devices = [...byDevice.entries()];
  for (const part of chunks(devices)) {
    const ids = await idsOf(store, part.map(([, e]) => ({ ...e.streams[0].actor, after: e.after })));
    for (const [, e] of part) {
      const found = ids.get(actorKey(e.streams[0].actor)) ?? [];
      for (const s of e.streams) {
        if (!s.settled) continue;
        if (s.found(found)) resynced++;
        else if (s.suspects) gate.suspects = true;
      }
    }
  }
  return resynced;
}

/**
 * Every device's ids after its floor, a page per device per statement: a device whose page was full (one that
 * does not acknowledge while much arrives) is asked again past it, up to MAX_PAGES.
 */
async function idsOf(store: InboxRecheckStore, devices: { userId: string; deviceId: number; after: bigint }[]) {
  const ids = new Map<string, string[]>();
  let ask = devices;
  for (let page = 0; ask.length > 0 && page < MAX_PAGES; page++) {
    const got = new Map<string, string[]>();
    for (const r of await store.idsAfter(ask, IDS_PER_DEVICE)) {
      const k = actorKey(r);
      (got.get(k) ?? got.set(k, []).get(k)!).push(r.id);
    }
    const next = [];
    for (const d of ask) {
      const k = actorKey(d);
      const mine = got.get(k) ?? [];
      ids.set(k, [...(ids.get(k) ?? []), ...mine]);
      if (mine.length === IDS_PER_DEVICE) next.push({ ...d, after: BigInt(mine[mine.length - 1]) });
    }
    ask = next;
  }
  return ids;
}

/** The floor, lowered so the look sees the suspects again. */
function lowest(floor: bigint, suspects: ReadonlySet<string> | null): bigint {
  let f = floor;
  for (const id of suspects ?? []) if (BigInt(id) - 1n < f) f = BigInt(id) - 1n;
  return f;
}

/** What a group stream exposes to the re-check (GroupStream). */
export interface RecheckedGroups {
  readonly device: Actor;
  /**
   * `top`: the group's last sequence number this device may reach; `ended`: its membership has an end. Catches up
   * (and answers true) when the stream is behind it, or does not know of the membership.
   */
  recheck(groupId: string, top: number, ended: boolean): boolean;
}

export interface GroupRecheckStore {
  /** Every membership of these devices with the group's last sequence number (the membership's end if sooner). */
  tops(devices: Actor[]): Promise<{ userId: string; deviceId: number; groupId: string; top: number; ended: boolean }[]>;
}

/**
 * One look at every group stream of the node. A group's last_seq is written under the group row's lock, so a value
 * read means every event up to it has committed: no look-behind is needed here.
 */
export async function recheckGroups(open: Iterable<RecheckedGroups>, store: GroupRecheckStore): Promise<number> {
  const byDevice = new Map<string, RecheckedGroups[]>();
  for (const s of open) {
    const k = actorKey(s.device);
    (byDevice.get(k) ?? byDevice.set(k, []).get(k)!).push(s);
  }
  let caughtUp = 0;
  for (const part of chunks([...byDevice.values()])) {
    for (const r of await store.tops(part.map((streams) => streams[0].device))) {
      for (const s of byDevice.get(actorKey(r)) ?? []) if (s.recheck(r.groupId, r.top, r.ended)) caughtUp++;
    }
  }
  return caughtUp;
}

/**
 * Runs the rounds (by name) one after another every `intervalMs`, never two at once; a failing round is logged and
 * the next interval tries again. `found` hears what each round acted on. Returns a stop function that waits for a
 * round in progress.
 */
export function startRounds(
  intervalMs: number,
  rounds: Record<string, () => Promise<number>>,
  logger: Logger,
  say: { acted: string; failed: string },
  found: (round: string, n: number) => void = () => {},
): () => Promise<void> {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= (async () => {
      try {
        for (const [name, round] of Object.entries(rounds)) {
          const n = await round();
          if (n === 0) continue;
          found(name, n);
          logger.info({ [name]: n }, say.acted);
        }
      } catch (err) {
        logger.warn({ err: (err as Error).message }, say.failed);
      } finally {
        running = null;
      }
    })();
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
