// The multi-node bus: Redis pub/sub through graphql-redis-subscriptions. One engine subscription (one Redis
// SUBSCRIBE) per channel however many local listeners want it; the listeners of a channel are kept in
// ChannelListeners (a second listener costs an array slot, not another engine subscription).
import { RedisPubSub } from "graphql-redis-subscriptions";
import { connectRedis } from "./redis.ts";
import type { Logger } from "../logger.ts";
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

  const engine = new RedisPubSub({
    publisher,
    subscriber,
    serializer: JSON.stringify,
    deserializer: (raw: string | Buffer) => JSON.parse(raw.toString()),
  });
  const listeners = new ChannelListeners((err) => logger.error({ err: (err as Error).message }, "bus listener failed"));
  // The engine's subscription id of each channel, pending while its SUBSCRIBE is in flight (a second listener of
  // the channel waits for the same one). Channels of different deployments (or test runs) sharing one Redis never
  // meet: every name carries the prefix.
  const upstream = new Map<string, Promise<number>>();

  async function unsubscribe(channel: string, fn: Listener) {
    if (!listeners.remove(channel, fn)) return;
    const id = upstream.get(channel);
    upstream.delete(channel);
    // A connection that is already closed (shutdown) holds no subscription: nothing to undo.
    if (id) await id.then((n) => engine.unsubscribe(n)).catch(() => {});
  }

  return {
    kind: "redis",
    async publish(channel, event) {
      try {
        await engine.publish(prefix + channel, event);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "live event not published");
      }
    },
    async subscribe<T>(channel: string, onEvent: (event: T) => void) {
      const name = prefix + channel;
      const fn = onEvent as Listener;
      if (listeners.add(name, fn)) {
        const pending = engine.subscribe(name, (event: unknown) => listeners.dispatch(name, () => event), {});
        upstream.set(name, pending);
        // Runs before the waiting callers resume (registered first), so a listener arriving after a failure
        // finds the channel empty and subscribes again instead of trusting a subscription that never happened.
        pending.catch(() => {
          if (upstream.get(name) === pending) upstream.delete(name);
          listeners.drop(name);
        });
      }
      await upstream.get(name);
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
      await engine.close();
    },
  };
}
