// Acknowledgements in batches, off the receive path: an envelope is acknowledged only after the app's handlers for
// it returned and it was marked seen here, so its acknowledgement may trail behind (a redelivery in between is
// recognised as seen and acknowledged again). One request in flight; what arrives meanwhile goes in the next.
export class Acker {
  private queue: string[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private send: (ids: string[]) => Promise<unknown>,
    private onError: (err: unknown) => void,
    /** Below the server's MAX_ACK_IDS. */
    private maxIds = 500,
  ) {}

  add(id: string): void {
    this.queue.push(id);
    this.running ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const ids = this.queue.splice(0, this.maxIds);
      // A failed acknowledgement leaves the items queued on the server: they come back and are acknowledged then.
      await this.send(ids).catch(this.onError);
    }
    this.running = null;
  }

  /** Resolves once everything added so far was sent. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }
}
