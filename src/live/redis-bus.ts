// The multi-node bus: Redis pub/sub on ioredis. One Redis SUBSCRIBE per channel however many local listeners want
// it; the listeners of a channel are kept in ChannelListeners (a second listener costs an array slot).
//
// ioredis is used directly, not through graphql-redis-subscriptions: that engine leaves promises of its own without a
// handler when a SUBSCRIBE is refused or an UNSUBSCRIBE meets a closed connection, and either then ends the process
// as an unhandled rejection (the first: test/realtime/subscribe-failure.test.ts; the second:
// davidyaha/graphql-redis-subscriptions#593).
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

  const listeners = new ChannelListeners((err) => logger.error({ err: (err as Error).message }, "bus listener failed"));
  subscriber.on("message", (channel: string, raw: string) => {
    listeners.dispatch(channel, () => {
      try {
        return JSON.parse(raw);
      } catch {
        logger.warn({ channel }, "live event dropped: not JSON");
        return undefined;
      }
    });
  });
  // The SUBSCRIBE of each channel, pending while in flight (a second listener of the channel waits for the same one).
  // Channels of different deployments (or test runs) sharing one Redis never meet: every name carries the prefix.
  const upstream = new Map<string, Promise<unknown>>();

  async function unsubscribe(channel: string, fn: Listener) {
    if (!listeners.remove(channel, fn)) return;
    const pending = upstream.get(channel);
    upstream.delete(channel);
    await pending?.catch(() => {});
    // A listener that came while the SUBSCRIBE was in flight sent its own: leave the channel to it.
    if (listeners.has(channel)) return;
    // A connection that is down or closed (shutdown) holds no subscription: nothing to undo.
    await subscriber.unsubscribe(channel).catch(() => {});
  }

  return {
    kind: "redis",
    async publish(channel, event) {
      try {
        await publisher.publish(prefix + channel, JSON.stringify(event));
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "live event not published");
      }
    },
    async subscribe<T>(channel: string, onEvent: (event: T) => void) {
      const name = prefix + channel;
      const fn = onEvent as Listener;
      if (listeners.add(name, fn)) {
        const pending = subscriber.subscribe(name);
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
