// Group commit for the hot write paths. Calls that arrive while earlier batches are being written wait and then go
// together in the next batch: one transaction, multi-row statements. At low load a call runs alone at once (no
// timer, no added latency); under load batches grow by themselves. Each caller's promise settles with its own
// result, only after the batch that holds it has finished (committed or failed). The calls waiting for a batch are
// bounded: when the database is slow or gone they would otherwise pile up (with their payloads) for as long as it is.
import { AppError } from "../errors.ts";

export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export class Batcher<I, O> {
  private queue: { item: I; resolve: (v: O) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    /** Writes one batch; answers one result per item, in order. A throw fails every item of the batch. */
    private readonly run: (items: I[]) => Promise<Settled<O>[]>,
    private readonly opts: {
      maxBatch: number;
      maxConcurrent: number;
      /** Calls waiting for a batch; one more fails at once with UNAVAILABLE (retryable). Unbounded if absent. */
      maxQueued?: number;
      /** Told each batch's size as it starts (metrics). */
      onBatch?: (size: number) => void;
    },
  ) {}

  /** Calls waiting for a batch of their own right now. */
  get queued(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    if (this.queue.length >= (this.opts.maxQueued ?? Infinity)) {
      return Promise.reject(
        new AppError("UNAVAILABLE", "the server is overloaded (the database is slow to answer); retry", { retryable: true }),
      );
    }
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      // Deferred to the end of this I/O turn so that calls read from the same socket poll share a batch.
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.opts.onBatch?.(batch.length);
      this.running++;
      this.run(batch.map((b) => b.item))
        .then(
          (results) => batch.forEach((b, i) => (results[i].ok ? b.resolve(results[i].value) : b.reject(results[i].error))),
          (err) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }
}

// A deadlock between two batches is resolved by PostgreSQL aborting one of them: that one is simply run again.
const isDeadlock = (e: unknown) => (e as { code?: string })?.code === "40P01";

/**
 * A batch's writer for Batcher that keeps one bad item from failing its neighbours: a batch PostgreSQL aborted for a
 * deadlock runs again (three tries); a batch failing otherwise wrote nothing, and each item is tried alone for its
 * own answer.
 */
export function itemByItemOnFailure<I, O>(once: (items: I[]) => Promise<O[]>): (items: I[]) => Promise<Settled<O>[]> {
  const run = async (items: I[]): Promise<Settled<O>[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await once(items)).map((value) => ({ ok: true, value }));
      } catch (error) {
        if (isDeadlock(error) && attempt < 3) continue;
        if (items.length === 1) return [{ ok: false, error }];
        const out: Settled<O>[] = [];
        for (const item of items) out.push((await run([item]))[0]);
        return out;
      }
    }
  };
  return run;
}

/**
 * How many batches of one kind may be in flight: one per `connectionsPerBatch` pooled connections (each batch holds
 * one connection at a time), leaving the rest of the pool to everything else; PGlite has one connection.
 */
export function batchesInFlight(database: { kind: "postgres"; poolSize: number } | { kind: "pglite" }, connectionsPerBatch: number): number {
  return database.kind === "postgres" ? Math.max(1, Math.floor(database.poolSize / connectionsPerBatch)) : 1;
}
