// Acknowledgements leave in batches, like the server's group commit: the first id goes at once; ids acknowledged
// while that call is in flight wait and go together in the next one (at most `maxIds` per call). No timer, so a
// quiet client adds no delay; a busy one sends one call per round trip instead of one per item.

export class AckQueue {
  private waiting: { id: string; done: (ok: boolean) => void }[] = [];
  private running: Promise<void> | null = null;

  constructor(
    /** Sends one batch (ackEnvelopes); a throw leaves those items queued on the server, to come back later. */
    private readonly send: (ids: string[]) => Promise<unknown>,
    private readonly onError: (err: unknown) => void,
    private readonly maxIds = 1000,
  ) {}

  /** Queues an id; resolves true once the server answered the call that carried it, false if that call failed. */
  add(id: string): Promise<boolean> {
    return new Promise((done) => {
      this.waiting.push({ id, done });
      this.running ??= this.drain();
    });
  }

  /** Resolves once every id queued so far was sent and answered (or failed). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.maxIds);
        let ok = true;
        try {
          await this.send(batch.map((b) => b.id));
        } catch (err) {
          ok = false;
          this.onError(err);
        }
        for (const b of batch) b.done(ok);
      }
    } finally {
      this.running = null;
    }
  }
}
