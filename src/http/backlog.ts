// graphql-ws writes one event at a time and waits for the socket to take it, so a client that reads slowly makes
// events pile up in the subscription's source iterator, in memory, without bound. This wrapper pulls from the
// source eagerly into a queue of its own and gives up (onOverflow) when that queue passes a bound: the caller drops
// the connection, and the client, once it reconnects, reads what it missed from its durable queue.

export function withBacklogLimit<T>(
  source: AsyncIterable<T>,
  maxBacklog: number,
  onOverflow: () => void,
): AsyncGenerator<T, undefined, unknown> {
  const inner = source[Symbol.asyncIterator]();
  const queue: T[] = [];
  let waiter: { resolve(r: IteratorResult<T, undefined>): void; reject(e: unknown): void } | null = null;
  let ended = false;
  let failure: { error: unknown } | null = null;

  const settle = () => {
    if (!waiter) return;
    const w = waiter;
    if (queue.length > 0) {
      waiter = null;
      w.resolve({ value: queue.shift() as T, done: false });
    } else if (failure) {
      waiter = null;
      w.reject(failure.error);
    } else if (ended) {
      waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  };

  void (async () => {
    try {
      while (!ended) {
        const r = await inner.next();
        if (r.done || ended) break;
        queue.push(r.value);
        if (queue.length > maxBacklog) {
          queue.length = 0;
          ended = true;
          onOverflow();
          break;
        }
        settle();
      }
    } catch (error) {
      failure = { error };
    }
    ended = true;
    settle();
    // A suspended source generator may only finish its return() when its next event comes: never wait for it.
    void Promise.resolve(inner.return?.()).catch(() => {});
  })();

  const stop = async (): Promise<IteratorResult<T, undefined>> => {
    ended = true;
    queue.length = 0;
    settle();
    void Promise.resolve(inner.return?.()).catch(() => {});
    return { value: undefined, done: true };
  };

  const generator = {
    next(): Promise<IteratorResult<T, undefined>> {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift() as T, done: false });
      if (failure) return Promise.reject(failure.error);
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    return: stop,
    throw: async (e: unknown) => {
      await stop();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return generator;
    },
  };
  return generator as unknown as AsyncGenerator<T, undefined, unknown>;
}
