// The single-node bus: an in-process emitter. Used when REDIS_URL is not set.
import { PubSub } from "graphql-subscriptions";
import { busOverEngine, type Bus } from "./bus.ts";

export function createMemoryBus(): Bus {
  const engine = new PubSub();
  return busOverEngine(
    "memory",
    engine,
    { onPublishError: () => {}, ping: async () => {}, close: async () => {} },
    new Set(),
  );
}
