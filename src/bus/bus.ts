// Live events between the service and the connections that want them. Losing an event loses no data: everything a
// device must see is also in the database, and a subscriber re-reads its queue after a gap (see onReconnect).
import type { PubSubEngine } from "graphql-subscriptions";

export type Unsubscribe = () => Promise<void>;

export interface Bus {
  kind: "memory" | "redis";
  /** Never rejects: live delivery is best effort on top of the durable queues. */
  publish(channel: string, event: unknown): Promise<void>;
  subscribe<T>(channel: string, onEvent: (event: T) => void): Promise<Unsubscribe>;
  /** Called after the bus lost its connection and got it back: live events in between may be lost. */
  onReconnect(listener: () => void): () => void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The part both implementations share: graphql-subscriptions' engine interface. */
export function busOverEngine(
  kind: Bus["kind"],
  engine: PubSubEngine,
  hooks: { onPublishError(err: unknown): void; ping(): Promise<void>; close(): Promise<void> },
  reconnectListeners: Set<() => void>,
): Bus {
  return {
    kind,
    async publish(channel, event) {
      try {
        await engine.publish(channel, event);
      } catch (err) {
        hooks.onPublishError(err);
      }
    },
    async subscribe<T>(channel: string, onEvent: (event: T) => void) {
      const id = await engine.subscribe(channel, onEvent as (e: unknown) => void, {});
      let done = false;
      return async () => {
        if (done) return;
        done = true;
        // A connection that is already closed (shutdown) holds no subscription: nothing to undo.
        await Promise.resolve(engine.unsubscribe(id)).catch(() => {});
      };
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    ping: hooks.ping,
    close: hooks.close,
  };
}
