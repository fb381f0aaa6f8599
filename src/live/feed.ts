// A push-driven async iterator for subscriptions. Written by hand rather than as an async generator: a generator
// waiting for its next event cannot be returned from until that event arrives, so a client that unsubscribes from a
// quiet channel would leave its bus subscription behind. Here return() settles at once and runs the cleanup.
import { AppError } from "../errors.ts";

export class Feed<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private waitingReject: ((err: unknown) => void) | null = null;
  private spaceWaiters: (() => void)[] = [];
  private failure: unknown = null;
  private done = false;
  private cleanups: (() => unknown)[] = [];

  /** limit: items held for a consumer that does not read; past it the consumer is dropped (see push). */
  constructor(private readonly limit: number) {}

  get closed(): boolean {
    return this.done || this.failure !== null;
  }

  onClose(cleanup: () => unknown): void {
    if (this.done) void cleanup();
    else this.cleanups.push(cleanup);
  }

  /** Hands an item to the consumer; a consumer more than `limit` items behind is ended with LIMIT_EXCEEDED. */
  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.waitingReject = null;
      w({ value: item, done: false });
      return;
    }
    if (this.items.length >= this.limit) {
      this.fail(new AppError("LIMIT_EXCEEDED", "the subscriber fell too far behind; resubscribe to continue from the queue"));
      return;
    }
    this.items.push(item);
  }

  /** For producers that can wait (a queue replay): resolves when the consumer has room for more. */
  async room(): Promise<void> {
    while (!this.closed && this.items.length >= this.limit / 2) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
  }

  fail(err: unknown): void {
    if (this.closed) return;
    this.failure = err;
    // What was held is dropped: the consumer resubscribes and reads it from its durable queue.
    this.items = [];
    if (this.waitingReject) {
      const r = this.waitingReject;
      this.waiting = this.waitingReject = null;
      this.items = [];
      r(err);
      void this.finish();
    }
    this.wakeProducers();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      if (this.items.length < this.limit / 2) this.wakeProducers();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== null && !this.done) {
      const err = this.failure;
      void this.finish();
      return Promise.reject(err);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    this.wakeProducers();
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.waitingReject = reject;
    });
  }

  async return(): Promise<IteratorResult<T>> {
    await this.finish();
    return { value: undefined, done: true };
  }

  async throw(err: unknown): Promise<IteratorResult<T>> {
    await this.finish();
    throw err;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  private wakeProducers() {
    const ws = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of ws) w();
  }

  private async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.items = [];
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.waitingReject = null;
      w({ value: undefined, done: true });
    }
    this.wakeProducers();
    const cleanups = this.cleanups;
    this.cleanups = [];
    await Promise.allSettled(cleanups.map(async (c) => c()));
  }
}
