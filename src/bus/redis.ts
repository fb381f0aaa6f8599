// The multi-node bus: Redis pub/sub through graphql-redis-subscriptions, which shares one Redis SUBSCRIBE per
// channel among all local listeners, so a node pays once per channel however many connections want it.
import { RedisPubSub } from "graphql-redis-subscriptions";
import { Redis } from "ioredis";
import type { Logger } from "../logger.ts";
import { busOverEngine, type Bus } from "./bus.ts";

export function createRedisBus(url: string, prefix: string, logger: Logger): Bus {
  const options = { lazyConnect: false, maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(n * 100, 2000) };
  // A publish while Redis is away fails at once instead of queueing without bound: the envelope is already stored.
  // Auto-pipelining: the publishes of one event-loop turn (a whole send batch) go to Redis in one write.
  const publisher = new Redis(url, { ...options, enableOfflineQueue: false, enableAutoPipelining: true });
  // Named so an operator (or a test) can tell this deployment's subscriber apart in CLIENT LIST.
  const subscriber = new Redis(url, { ...options, connectionName: `${prefix}sub` });
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
    // Channels of different deployments (or test runs) sharing one Redis never meet.
    serializer: JSON.stringify,
    deserializer: (raw: string | Buffer) => JSON.parse(raw.toString()),
  });
  const prefixed = {
    publish: (ch: string, payload: unknown) => engine.publish(prefix + ch, payload),
    subscribe: (ch: string, fn: (e: unknown) => void, opts: object) => engine.subscribe(prefix + ch, fn, opts),
    unsubscribe: (id: number) => engine.unsubscribe(id),
  };
  return busOverEngine(
    "redis",
    prefixed as never,
    {
      onPublishError: (err) => logger.warn({ err: (err as Error).message }, "live event not published"),
      ping: async () => void (await publisher.ping()),
      close: async () => {
        await engine.close();
      },
    },
    reconnectListeners,
  );
}
