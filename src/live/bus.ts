// Live events between the service and the connections that want them. Losing an event loses no data: everything a
// device must see is also in the database, and a subscriber re-reads its queue after a gap (see onReconnect).
export type Unsubscribe = () => Promise<void>;

export interface Bus {
  kind: "memory" | "redis";
  /** Never rejects: live delivery is best effort on top of the durable queues. */
  publish(channel: string, event: unknown): Promise<void>;
  /** Resolves once events published on the channel from then on reach `onEvent`. */
  subscribe<T>(channel: string, onEvent: (event: T) => void): Promise<Unsubscribe>;
  /** Called after the bus lost its connection and got it back: live events in between may be lost. */
  onReconnect(listener: () => void): () => void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type Listener = (event: unknown) => void;

/**
 * The listeners of each channel on this node. Every connected device listens on a channel or two, so the record is
 * lean: a channel with one listener (nearly all of them) holds the function itself, not a collection.
 */
export class ChannelListeners {
  private byChannel = new Map<string, Listener | Listener[]>();

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  /** Returns true when this is the channel's first listener (the caller subscribes upstream). */
  add(channel: string, fn: Listener): boolean {
    const had = this.byChannel.get(channel);
    if (had === undefined) {
      this.byChannel.set(channel, fn);
      return true;
    }
    if (Array.isArray(had)) had.push(fn);
    else this.byChannel.set(channel, [had, fn]);
    return false;
  }

  /** Removes one registration of fn; returns true when the channel has no listener left (unsubscribe upstream). */
  remove(channel: string, fn: Listener): boolean {
    const had = this.byChannel.get(channel);
    if (had === undefined) return false;
    if (had === fn) {
      this.byChannel.delete(channel);
      return true;
    }
    if (!Array.isArray(had)) return false;
    const i = had.indexOf(fn);
    if (i >= 0) had.splice(i, 1);
    if (had.length === 1) this.byChannel.set(channel, had[0]);
    return false;
  }

  has(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  /** Forgets every listener of the channel (its upstream subscription failed: they were all told so). */
  drop(channel: string): void {
    this.byChannel.delete(channel);
  }

  /** Calls every listener of the channel; `decode` runs once, and only if someone listens. */
  dispatch(channel: string, decode: () => unknown): void {
    const had = this.byChannel.get(channel);
    if (had === undefined) return;
    const event = decode();
    // A copy: a listener may unsubscribe (or subscribe) others while this runs.
    for (const fn of Array.isArray(had) ? [...had] : [had]) {
      try {
        fn(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
