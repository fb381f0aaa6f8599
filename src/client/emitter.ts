// A typed event emitter whose emit awaits every handler in turn, so the SDK can acknowledge an envelope only after
// the app's callbacks for it have returned, and a 'message' handler that throws keeps the envelope queued.
export type Handler<T> = (event: T) => unknown;

export class AsyncEmitter<Events extends Record<string, unknown>> {
  private handlers = new Map<keyof Events, Set<Handler<never>>>();

  on<K extends keyof Events>(event: K, handler: Handler<Events[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  /** Resolves once every handler returned; rejects with the first handler's error. */
  async emit<K extends keyof Events>(event: K, value: Events[K]): Promise<void> {
    for (const h of [...(this.handlers.get(event) ?? [])]) await (h as Handler<Events[K]>)(value);
  }

  /** For events nobody must wait on: a throwing handler is reported, never propagated. */
  notify<K extends keyof Events>(event: K, value: Events[K], onError: (err: unknown) => void): void {
    this.emit(event, value).catch(onError);
  }
}

/** One holder at a time, in arrival order. libsignal's stores are read-modify-write: two operations on one session
 * interleaved at an await would lose a ratchet step. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}
