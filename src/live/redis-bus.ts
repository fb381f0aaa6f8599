// The multi-node bus: Redis pub/sub through graphql-redis-subscriptions. One engine subscription (one Redis
// SUBSCRIBE) per channel however many local listeners want it; the listeners of a channel are kept in
// ChannelListeners (a second listener costs an array slot, not another engine subscription). An event reaches the
// listeners of the node that publishes it at once, and the other nodes' through Redis.
//
// The engine (2.7) leaves two promises of its own without a handler: the one it shares between the callers waiting
// on a SUBSCRIBE, when Redis refuses it, and the UNSUBSCRIBE/PUNSUBSCRIBE it fires without waiting, when the
// connection is closed (davidyaha/graphql-redis-subscriptions#593). Either would end the process as an unhandled
// rejection (test/realtime/subscribe-failure.test.ts), so both are observed here, on clients that are ours.
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { RedisPubSub } from "graphql-redis-subscriptions";
import { connectRedis } from "./redis.ts";
import type { Logger } from "../logger.ts";
import { AppError } from "../errors.ts";
import { ChannelListeners, type Bus, type Listener } from "./bus.ts";

export function createRedisBus(url: string, prefix: string, logger: Logger): Bus {
  // A publish while Redis is away fails at once instead of queueing without bound: the envelope is already stored.
  // Auto-pipelining: the publishes of one event-loop turn (a whole send batch) go to Redis in one write.
  const publisher = connectRedis(url, { enableOfflineQueue: false, enableAutoPipelining: true });
  // Named so an operator (or a test) can tell this deployment's subscriber apart in CLIENT LIST. ioredis subscribes
  // its channels again by itself after a reconnect.
  const subscriber = connectRedis(url, { connectionName: `${prefix}sub` });
  const reconnectListeners = new Set<() => void>();
  let lostConnection = false;
  subscriber.on("error", (err) => logger.warn({ err: err.message }, "redis subscriber error"));
  publisher.on("error", (err) => logger.warn({ err: err.message }, "redis publisher error"));
  subscriber.on("close", () => (lostConnection = true));
  subscriber.on("ready", () => {
    if (!lostConnection) return;
    lostConnection = false;
    logger.info("redis subscriber reconnected; asking live subscribers to re-read their queues");
    for (const listener of reconnectListeners) listener();
  });

  // What this node puts before each event it publishes: 8 random characters, then a NUL, which no JSON text starts
  // with (so a node of an earlier version drops a marked event as not JSON, and its device re-reads its queue).
  const ORIGIN = Buffer.from(`${randomBytes(6).toString("base64url")}\u0000`);
  const ORIGIN_BYTES = ORIGIN.length;
  const origin = ORIGIN.toString();
  observeUnsubscribes(subscriber);
  const engine = new RedisPubSub({
    publisher,
    subscriber,
    // publish() below hands the engine its payload already serialised and marked with this node's origin.
    serializer: (payload: unknown) => payload as string,
    deserializer: (raw: string | Buffer) => {
      const bytes = typeof raw === "string" ? Buffer.from(raw) : raw;
      const marked = bytes.length >= ORIGIN_BYTES && bytes[ORIGIN_BYTES - 1] === 0;
      // This node's own event coming back: its listeners had it at publish.
      if (marked && ORIGIN.compare(bytes, 0, ORIGIN_BYTES) === 0) return undefined;
      // Another node's, after its origin; one without a mark (a node of an earlier version) is JSON as it is.
      try {
        return JSON.parse(bytes.toString("utf8", marked ? ORIGIN_BYTES : 0));
      } catch {
        logger.warn("live event dropped: not JSON");
        return undefined;
      }
    },
  });
  const listeners = new ChannelListeners((err) => logger.error({ err: (err as Error).message }, "bus listener failed"));
  // The SUBSCRIBE of each channel, pending while in flight (a second listener of the channel waits for the same one).
  // Channels of different deployments (or test runs) sharing one Redis never meet: every name carries the prefix.
  const upstream = new Map<string, Promise<number>>();

  async function unsubscribe(channel: string, fn: Listener) {
    if (!listeners.remove(channel, fn)) return;
    const pending = upstream.get(channel);
    upstream.delete(channel);
    // A connection that is down or closed (shutdown) holds no subscription: nothing to undo.
    const id = await pending?.catch(() => null);
    if (id !== null && id !== undefined) engine.unsubscribe(id);
  }

  return {
    kind: "redis",
    async publish(channel, event) {
      const name = prefix + channel;
      try {
        const json = JSON.stringify(event);
        // This node's listeners get the event now, as the in-process bus gives it, instead of after a round trip
        // through Redis (a turn of this node's event loop or more, under load); Redis carries it to the other nodes.
        listeners.dispatch(name, () => event);
        await engine.publish(name, origin + json);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "live event not published");
      }
    },
    async subscribe<T>(channel: string, onEvent: (event: T) => void) {
      const name = prefix + channel;
      const fn = onEvent as Listener;
      if (listeners.add(name, fn)) {
        const pending = engine.subscribe(name, (event: unknown) => event !== undefined && listeners.dispatch(name, () => event), {});
        observeSharedSubscribe(engine, name);
        upstream.set(name, pending);
        // Runs before the waiting callers resume (registered first), so a listener arriving after a failure
        // finds the channel empty and subscribes again instead of trusting a subscription that never happened.
        pending.catch(() => {
          if (upstream.get(name) !== pending) return;
          upstream.delete(name);
          listeners.drop(name);
        });
      }
      try {
        await upstream.get(name);
      } catch (err) {
        // Refused (an ACL, a connection given up on): the caller's stream ends with an error its client can act on.
        logger.warn({ err: (err as Error).message, channel }, "live subscription failed");
        throw new AppError("UNAVAILABLE", "live delivery is unavailable; resubscribe to continue from the queue");
      }
      let done = false;
      return async () => {
        if (done) return;
        done = true;
        await unsubscribe(name, fn);
      };
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    ping: async () => void (await publisher.ping()),
    close: async () => {
      await Promise.all([publisher.quit().catch(() => {}), subscriber.quit().catch(() => {})]);
    },
  };
}

/** The engine's UNSUBSCRIBE and PUNSUBSCRIBE are fired and forgotten: a closed connection must not end the process. */
function observeUnsubscribes(subscriber: Redis): void {
  for (const command of ["unsubscribe", "punsubscribe"] as const) {
    const original = subscriber[command].bind(subscriber) as (...args: unknown[]) => Promise<unknown>;
    subscriber[command] = ((...args: unknown[]) => {
      const sent = original(...args);
      sent.catch(() => {});
      return sent;
    }) as never;
  }
}

/** The promise the engine shares between the callers of one channel's SUBSCRIBE; ours handle the returned one. */
function observeSharedSubscribe(engine: RedisPubSub, channel: string): void {
  const pending = (engine as unknown as { subsPendingRefsMap?: Map<string, { pending?: { promise?: Promise<unknown> } }> })
    .subsPendingRefsMap?.get(channel)?.pending?.promise;
  pending?.catch(() => {});
}
