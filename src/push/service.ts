// Push wake-ups for devices that are offline: registrations, the "items queued" listener that turns queue items for
// offline devices into pending rows, and the worker every node runs that sends them (off the request path,
// retried with backoff, at most one push per device per coalescing window until it connects again).
import type { Actor, ServiceDeps } from "../deps.ts";
import { backoffMs, coalesce, rateCheck, validateRegistration, WAKING_EVENTS, type PushRegistrationInput, type Wake } from "./rules.ts";
import { createPushSender, type VapidKeys } from "./sender.ts";
import { createPushStore, type Claimed } from "./store.ts";

/** What the inbox reports after commit for each queued item (its event's type name, and whether it is a call). */
export interface QueuedItem {
  userId: string;
  deviceId: number;
  event: { __typename: string; id: string | null };
  urgent?: boolean;
}

export interface PushPorts {
  /** Devices among these with a live connection on any node ("userId:deviceId"). */
  onlineDevices(devices: { userId: string; deviceId: number }[]): Promise<Set<string>>;
  /**
   * Whether the device has a live connection on this node: known without I/O, so a wake-up for it is dropped before
   * the registration read (most wake-ups name devices that are online, and that read was one more statement per
   * batch of sends).
   */
  connectedHere(device: { userId: string; deviceId: number }): boolean;
}

export type PushService = ReturnType<typeof createPushService>;

export function createPushService(deps: ServiceDeps, ports: PushPorts, vapid: VapidKeys | null) {
  const { config, logger } = deps;
  const cfg = config.push;
  const store = createPushStore(deps.sql);
  const sender = createPushSender(cfg, vapid);
  // Longer than one attempt can take, so a live node never loses its lease mid-send.
  const leaseMs = 2 * cfg.timeoutMs + 1000;
  const key = (d: { userId: string; deviceId: number }) => `${d.userId}:${d.deviceId}`;
  let timer: NodeJS.Timeout | null = null;
  let draining: Promise<void> | null = null;
  let again = false;
  let stopped = false;

  async function register(actor: Actor, input: PushRegistrationInput): Promise<boolean> {
    await store.register(actor, validateRegistration(input, cfg, vapid !== null));
    return true;
  }

  async function unregister(actor: Actor): Promise<boolean> {
    return store.unregister(actor.userId, actor.deviceId);
  }

  /** The device was deactivated: its push address goes. */
  async function forget(userId: string, deviceId: number): Promise<void> {
    await store.unregister(userId, deviceId);
  }

  function pushConfig() {
    return { vapidPublicKey: vapid?.publicKey ?? null, gateways: Object.keys(cfg.gateways) };
  }

  /** The inbox's "items queued" port (after commit). Never throws: a failure is logged, the items stay queued. */
  function queued(items: QueuedItem[]): void {
    wake(
      items
        .filter((i) => i.event.id !== null && WAKING_EVENTS.has(i.event.__typename))
        .map((i) => ({ userId: i.userId, deviceId: i.deviceId, urgent: i.urgent ?? false })),
    );
  }

  /** Wakes those of these devices that are away (the groups' port: a message stored for its member devices). */
  function wake(devices: Wake[]): void {
    const wakes = coalesce(devices).filter((d) => !ports.connectedHere(d));
    if (wakes.length) void wakeOffline(wakes).catch((err) => logger.warn({ err: (err as Error).message }, "push wake-up not recorded"));
  }

  async function wakeOffline(wakes: Wake[]): Promise<void> {
    const now = new Date();
    const candidates = await store.wakeable(wakes, now, cfg.coalesceSeconds);
    if (candidates.length === 0) return;
    const online = await ports.onlineDevices(candidates);
    const offline = candidates.filter((w) => !online.has(key(w)));
    if ((await store.markPending(offline, now, cfg.coalesceSeconds)) > 0) kick();
  }

  /** The HTTP layer saw the device connect: nothing pending for it, and it may be woken again once it leaves. */
  async function deviceConnected(actor: Actor): Promise<void> {
    await store.connected(actor);
  }

  async function attempt(row: Claimed, now: Date): Promise<{ startedAt: Date | null; count: number } | null> {
    const rate = rateCheck({ startedAt: row.windowStartedAt, count: row.windowCount }, now, cfg.rateLimit);
    if (!rate.allowed) {
      await store.reschedule(row, rate.retryAt, false);
      return null;
    }
    const { outcome, status, retryAfterMs } = await sender.send(row);
    const who = { userId: row.userId, deviceId: row.deviceId, kind: row.kind, status, attempt: row.attempts };
    if (outcome === "sent") return rate.next;
    if (outcome === "gone") {
      logger.info(who, "push registration gone: removed");
      await store.unregisterIfUnchanged(row);
    } else if (outcome === "drop" || row.attempts >= cfg.maxAttempts) {
      logger.warn(who, "push given up");
      await store.drop(row);
    } else {
      const wait = Math.max(backoffMs(row.attempts, cfg.retryBaseMs), retryAfterMs ?? 0);
      logger.debug({ ...who, wait }, "push retried later");
      await store.reschedule(row, new Date(Date.now() + wait), true);
    }
    return null;
  }

  /** Claims due wake-ups in batches and sends each batch concurrently, until none is due. */
  async function drainOnce(): Promise<void> {
    while (!stopped) {
      const now = new Date();
      const rows = await store.claim(now, new Date(now.getTime() + leaseMs), cfg.concurrency);
      if (rows.length === 0) return;
      // Connected meanwhile (here or on another node): it reads its queue itself.
      const online = await ports.onlineDevices(rows);
      const results = await Promise.all(
        rows.map(async (row) => {
          if (online.has(key(row))) return void (await store.drop(row));
          return attempt(row, now).catch((err) => void logger.warn({ err: (err as Error).message }, "push attempt failed"));
        }),
      );
      const sent = rows.flatMap((row, i) => (results[i] ? [{ row, window: results[i] }] : []));
      await store.sent(sent.map((s) => s.row), new Date(), sent.map((s) => s.window));
      if (rows.length < cfg.concurrency) return;
    }
  }

  /** Runs the worker now (one run at a time; a kick during a run starts another after it). */
  function kick(): void {
    if (stopped || !cfg.worker) return;
    if (draining) return void (again = true);
    draining = (async () => {
      try {
        do {
          again = false;
          await drainOnce();
        } while (again && !stopped);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "push worker run failed");
      } finally {
        draining = null;
      }
    })();
  }

  function start(): void {
    if (!cfg.worker) return;
    stopped = false;
    timer ??= setInterval(kick, cfg.pollMs);
    timer.unref();
    kick();
  }

  /** Finishes the run in progress (its leases are released by the outcome of each send) and stops. */
  async function stop(): Promise<void> {
    stopped = true;
    if (timer) clearInterval(timer);
    timer = null;
    await draining;
    sender.close();
  }

  return { register, unregister, forget, pushConfig, queued, wake, deviceConnected, start, stop, counts: store.counts };
}
