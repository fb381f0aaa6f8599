// The single-node bus: listeners called in process, at publish. Used when REDIS_URL is not set.
import { ChannelListeners, type Bus, type Listener } from "./bus.ts";

export function createMemoryBus(onListenerError: (err: unknown) => void = () => {}): Bus {
  const listeners = new ChannelListeners(onListenerError);
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
