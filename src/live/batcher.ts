// Group commit for the hot write paths. Calls that arrive while earlier batches are being written wait and then go
// together in the next batch: one transaction, multi-row statements. At low load a call runs alone at once (no
// timer, no added latency); under load batches grow by themselves. Each caller's promise settles with its own
// result, only after the batch that holds it has finished (committed or failed).

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
      /** Told each batch's size as it starts (metrics). */
      onBatch?: (size: number) => void;
    },
  ) {}

  submit(item: I): Promise<O> {
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
