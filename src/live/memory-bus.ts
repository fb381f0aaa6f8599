// The single-node bus: listeners called in process, at publish. Used when REDIS_URL is not set.
import type { Logger } from "../logger.ts";
import { ChannelListeners, type Bus, type Listener } from "./bus.ts";

export function createMemoryBus(logger: Logger): Bus {
  const listeners = new ChannelListeners((err) => logger.error({ err: (err as Error).message }, "bus listener failed"));
  return {
    kind: "memory",
    async publish(channel, event) {
      listeners.dispatch(channel, () => event);
    },
    async subscribe<T>(channel: string, onEvent: (event: T) => void) {
      const fn = onEvent as Listener;
      listeners.add(channel, fn);
      let done = false;
      return async () => {
        if (done) return;
        done = true;
        listeners.remove(channel, fn);
      };
    },
    onReconnect: () => () => {},
    ping: async () => {},
    close: async () => {},
  };
}
