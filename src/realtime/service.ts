// Typing and presence: live state that is never stored in PostgreSQL.
// - Typing: published on the conversation's channel; each subscriber lapses a typer by itself when no refresh came
//   within TYPING_TTL_MS (a timer per typer, per subscription), so a client that vanishes mid-typing stops "typing".
// - Presence: a user is online while any device holds an authenticated connection on any node. Each node records its
//   connections in the presence store with an expiry of PRESENCE_TTL_MS and refreshes them every third of that; every
//   node also reaps expired entries on the same beat. So a killed node's devices go offline at most
//   PRESENCE_TTL_MS + PRESENCE_TTL_MS/3 after its last refresh (20 s with the default 15 s).
import { randomUUID } from "node:crypto";
import { channels, isConsentChanged, type ConsentChanged } from "../live/channels.ts";
import type { PresenceStore } from "../live/presence-store.ts";
import { badInput, forbidden } from "../errors.ts";
import type { Actor, ServiceDeps } from "../deps.ts";
import { Feed } from "../live/feed.ts";
import { rereader } from "./reread.ts";

export interface TypingPayload {
  conversationId: string;
  userId: string;
  deviceId: number;
  isTyping: boolean;
  /** When this state lapses unless refreshed (null when isTyping is false). */
  expiresAt: string | null;
}

export interface PresencePayload {
  userId: string;
  online: boolean;
  lastSeen: string | null;
}

export const MAX_PRESENCE_USERS = 100;

export type RealtimeService = ReturnType<typeof createRealtimeService>;

/** Who takes part in a conversation (or group). */
export interface Participants {
  isParticipant(userId: string, conversationId: string): Promise<boolean>;
}

/** Consent (src/consent/) decides whose live state reaches whom. */
export interface LiveConsent {
  presenceVisible(viewer: string, userIds: string[]): Promise<Set<string>>;
  typingPasses(actor: Actor, conversationId: string): Promise<boolean>;
  blockedEitherWay(userId: string): Promise<Set<string>>;
}

export function createRealtimeService(deps: ServiceDeps, messages: Participants, store: PresenceStore, consent: LiveConsent) {
  const { bus, config, logger } = deps;
  const { typingTtlMs, presenceTtlMs } = config.realtime;
  const nodeId = randomUUID();
  const local = new Map<string, { actor: Actor; sockets: number }>();
  const key = (a: { userId: string; deviceId: number }) => `${a.userId}:${a.deviceId}`;
  let timer: NodeJS.Timeout | null = null;

  async function requireParticipant(actor: Actor, conversationId: string) {
    if (!(await messages.isParticipant(actor.userId, conversationId))) {
      throw forbidden("only the conversation's participants may do that");
    }
  }

  async function setTyping(actor: Actor, conversationId: string, isTyping: boolean): Promise<boolean> {
    await requireParticipant(actor, conversationId);
    // Dropped without telling: typing to someone who blocked the actor, or before the actor accepted them.
    if (!(await consent.typingPasses(actor, conversationId))) return true;
    const event: TypingPayload = {
      conversationId,
      userId: actor.userId,
      deviceId: actor.deviceId,
      isTyping,
      expiresAt: isTyping ? new Date(Date.now() + typingTtlMs).toISOString() : null,
    };
    await bus.publish(channels.conversation(event.conversationId), event);
    return true;
  }

  async function typingStream(actor: Actor, conversationId: string): Promise<AsyncIterableIterator<TypingPayload>> {
    await requireParticipant(actor, conversationId);
    const feed = new Feed<TypingPayload>(config.messaging.inboxBufferLimit);
    // Re-read when a block either way changes (ConsentChanged on the actor's presence channel); until the first
    // read answers nothing passes, so a stream never shows typing it should not.
    let blocked: Set<string> | null = null;
    const reread = rereader(feed, async () => void (blocked = await consent.blockedEitherWay(actor.userId)));
    const lapses = new Map<string, NodeJS.Timeout>();
    const clear = (k: string) => {
      clearTimeout(lapses.get(k));
      lapses.delete(k);
    };
    const onTyping = (e: TypingPayload) => {
      if ((e.userId === actor.userId && e.deviceId === actor.deviceId) || !blocked || blocked.has(e.userId)) return;
      const k = `${e.userId}:${e.deviceId}`;
      clear(k);
      if (e.isTyping) {
        const delay = Math.max(0, Math.min(typingTtlMs, Date.parse(e.expiresAt ?? "") - Date.now() || typingTtlMs));
        lapses.set(
          k,
          setTimeout(() => {
            lapses.delete(k);
            if (!blocked?.has(e.userId)) feed.push({ ...e, isTyping: false, expiresAt: null });
          }, delay),
        );
      }
      feed.push(e);
    };
    const unsubscribes = await Promise.all([
      bus.subscribe(channels.presence(actor.userId), (e) => void (isConsentChanged(e) && reread.run())),
      bus.subscribe<TypingPayload>(channels.conversation(conversationId), (e) => reread.hold(() => onTyping(e))),
    ]);
    feed.onClose(async () => {
      for (const k of [...lapses.keys()]) clear(k);
      await Promise.all(unsubscribes.map((u) => u()));
    });
    await reread.run();
    return feed;
  }

  async function announce(userId: string) {
    const online = await store.online([userId], Date.now());
    if (online.has(userId)) {
      await bus.publish(channels.presence(userId), { userId, online: true, lastSeen: null } satisfies PresencePayload);
      return;
    }
    const at = Date.now();
    await store.setLastSeen(userId, at);
    const event: PresencePayload = { userId, online: false, lastSeen: new Date(at).toISOString() };
    await bus.publish(channels.presence(userId), event);
  }

  /** The HTTP layer reports every authenticated WebSocket it accepts and closes. */
  async function deviceConnected(actor: Actor): Promise<void> {
    const entry = local.get(key(actor));
    if (entry) return void entry.sockets++;
    local.set(key(actor), { actor, sockets: 1 });
    await store.put([{ ...actor, nodeId }], Date.now() + presenceTtlMs);
    await announce(actor.userId);
  }

  async function deviceDisconnected(actor: Actor): Promise<void> {
    const entry = local.get(key(actor));
    if (!entry) return;
    if (--entry.sockets > 0) return;
    local.delete(key(actor));
    await store.remove({ ...actor, nodeId });
    await announce(actor.userId);
  }

  async function beat() {
    await store.refresh(
      [...local.values()].map((e) => ({ ...e.actor, nodeId })),
      Date.now() + presenceTtlMs,
    );
    const gone = await store.reap(Date.now());
    for (const userId of new Set(gone.map((g) => g.userId))) await announce(userId);
  }

  function start() {
    timer ??= setInterval(() => {
      beat().catch((err) => logger.warn({ err: (err as Error).message }, "presence heartbeat failed"));
    }, Math.max(250, Math.floor(presenceTtlMs / 3)));
    timer.unref();
  }

  /** Stops the heartbeat and takes this node's connections out of presence (a clean shutdown). */
  async function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    const users = new Set<string>();
    for (const e of local.values()) {
      await store.remove({ ...e.actor, nodeId }).catch(() => {});
      users.add(e.actor.userId);
    }
    local.clear();
    for (const u of users) await announce(u).catch(() => {});
    await store.close();
  }

  async function visibleUsers(actor: Actor, userIds: string[]): Promise<string[]> {
    if (userIds.length > MAX_PRESENCE_USERS) throw badInput(`at most ${MAX_PRESENCE_USERS} users`);
    return [...(await consent.presenceVisible(actor.userId, userIds))];
  }

  /** Presence of the given users the caller may see (consent decides); others are left out. */
  async function presence(actor: Actor, userIds: string[]): Promise<PresencePayload[]> {
    return statuses(await visibleUsers(actor, userIds));
  }

  async function statuses(users: string[]): Promise<PresencePayload[]> {
    const [online, seen] = await Promise.all([store.online(users, Date.now()), store.lastSeen(users)]);
    return users.map((userId) => ({
      userId,
      online: online.has(userId),
      lastSeen: online.has(userId) || !seen.has(userId) ? null : new Date(seen.get(userId)!).toISOString(),
    }));
  }

  /**
   * The current state of each visible user, then every change. It listens on every asked user's channel, visible
   * or not, so a ConsentChanged there (or the viewer's own block of one of them) re-reads who is visible: a user
   * who became visible gets their current state, one who no longer is gets nothing more.
   */
  async function presenceStream(actor: Actor, userIds: string[]): Promise<AsyncIterableIterator<PresencePayload>> {
    if (userIds.length > MAX_PRESENCE_USERS) throw badInput(`at most ${MAX_PRESENCE_USERS} users`);
    const asked = [...new Set(userIds.map((u) => u.toLowerCase()))];
    const feed = new Feed<PresencePayload>(config.messaging.inboxBufferLimit);
    let visible = new Set<string>();
    const reread = rereader(feed, async () => {
      const next = await consent.presenceVisible(actor.userId, asked);
      const gained = asked.filter((u) => next.has(u) && !visible.has(u));
      visible = next;
      for (const s of await statuses(gained)) feed.push(s);
    });
    const subscribed = await Promise.allSettled(
      asked.map((u) =>
        bus.subscribe<PresencePayload | ConsentChanged>(channels.presence(u), (e) => {
          if (isConsentChanged(e)) return void reread.run();
          reread.hold(() => visible.has(e.userId) && feed.push(e));
        }),
      ),
    );
    const unsubscribes = subscribed.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    feed.onClose(() => Promise.all(unsubscribes.map((u) => u())));
    // One refused SUBSCRIBE refuses the stream, and the channels that did subscribe are left at once, not kept
    // listening into a feed nobody reads.
    const refused = subscribed.find((s) => s.status === "rejected");
    if (refused) {
      await feed.return();
      throw refused.reason;
    }
    await reread.run();
    return feed;
  }

  /** Whether the device has a WebSocket open on this node. */
  const connectedHere = (d: { userId: string; deviceId: number }) => local.has(key(d));

  return { setTyping, typingStream, deviceConnected, deviceDisconnected, connectedHere, presence, presenceStream, start, stop, nodeId };
}
