// A push-driven async iterator for subscriptions. Written by hand rather than as an async generator: a generator
// waiting for its next event cannot be returned from until that event arrives, so a client that unsubscribes from a
// quiet channel would leave its bus subscription behind. Here return() settles at once and runs the cleanup.
import { AppError } from "../errors.ts";
import { overflows } from "./footprint.ts";

/** A byte bound on what a Feed holds, shared by every Feed of one kind (one object, not one per subscription). */
export interface FeedBudget<T> {
  maxBytes: number;
  sizeOf(item: T): number;
}

export class Feed<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private waitingReject: ((err: unknown) => void) | null = null;
  private spaceWaiters: (() => void)[] = [];
  private failure: unknown = null;
  private done = false;
  private cleanups: (() => unknown)[] | null = null;
  /** What the held items weigh (as budget.sizeOf counts them); 0 without a budget. */
  private bytes = 0;

  /**
   * limit: items held for a consumer that does not read; budget: the bytes they may weigh. Past either the consumer
   * is dropped (see push), and onOverflow is told, once, so that the transport can close the connection: a consumer
   * that stopped reading would otherwise keep its socket, and the send it blocks, open.
   */
  constructor(
    private readonly limit: number,
    private readonly budget?: FeedBudget<T>,
    private readonly onOverflow?: () => void,
  ) {}

  get closed(): boolean {
    return this.done || this.failure !== null;
  }

  onClose(cleanup: () => unknown): void {
    if (this.done) void cleanup();
    else (this.cleanups ??= []).push(cleanup);
  }

  /** Ended for good (returned, or its failure handed to the consumer): what it held is released. */
  protected get finished(): boolean {
    return this.done;
  }

  /**
   * For a subclass that holds its resources in fields (a feed every connection keeps pays for each closure and for
   * the cleanup list): runs once when the feed finishes, with the onClose cleanups.
   */
  protected release(): unknown {
    return undefined;
  }

  /** Bytes held for the consumer right now (0 without a budget). */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Hands an item to the consumer; one more than `limit` items or budget bytes behind is ended with LIMIT_EXCEEDED. */
  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.waitingReject = null;
      w({ value: item, done: false });
      return;
    }
    const size = this.budget ? this.budget.sizeOf(item) : 0;
    const bounds = { count: this.limit, bytes: this.budget?.maxBytes ?? Infinity };
    if (overflows({ count: this.items.length, bytes: this.bytes }, size, bounds)) {
      this.fail(new AppError("LIMIT_EXCEEDED", "the subscriber fell too far behind; resubscribe to continue from the queue"));
      this.onOverflow?.();
      return;
    }
    this.bytes += size;
    this.items.push(item);
  }

  /** For producers that can wait (a queue replay): resolves when the consumer has room for more. */
  async room(): Promise<void> {
    while (!this.closed && !this.roomy()) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
  }

  /** Under half of both bounds: a waiting producer may go on. */
  private roomy(): boolean {
    return this.items.length < this.limit / 2 && (!this.budget || this.bytes < this.budget.maxBytes / 2);
  }

  fail(err: unknown): void {
    if (this.closed) return;
    this.failure = err;
    // What was held is dropped: the consumer resubscribes and reads it from its durable queue.
    this.items = [];
    this.bytes = 0;
    if (this.waitingReject) {
      const r = this.waitingReject;
      this.waiting = this.waitingReject = null;
      r(err);
      void this.finish();
    }
    this.wakeProducers();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      if (this.budget) this.bytes = this.items.length === 0 ? 0 : this.bytes - this.budget.sizeOf(value);
      if (this.roomy()) this.wakeProducers();
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
    this.bytes = 0;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.waitingReject = null;
      w({ value: undefined, done: true });
    }
    this.wakeProducers();
    const cleanups = this.cleanups ?? [];
    this.cleanups = null;
    await Promise.allSettled([...cleanups, () => this.release()].map(async (c) => c()));
  }
}
