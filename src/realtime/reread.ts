// A live stream's consent, re-read when a ConsentChanged notice arrives. Notices and the events after them are
// handled in arrival order: an event waits for the reads of the notices before it (so it is judged by what they
// changed, never by the state before), and back-to-back notices make one read.
import { AppError } from "../errors.ts";
import type { Feed } from "../live/feed.ts";

// Events waiting for a read; a stream whose reads never keep up (a flood of notices) is dropped, not grown.
const MAX_WAITING = 1000;

export function rereader(feed: Pick<Feed<unknown>, "closed" | "fail">, read: () => Promise<void>) {
  const READ = () => {};
  const steps: (() => void)[] = [];
  let busy: Promise<void> | null = null;

  async function drain() {
    while (steps.length > 0 && !feed.closed) {
      const step = steps.shift()!;
      if (step !== READ) step();
      else {
        while (steps[0] === READ) steps.shift();
        await read();
      }
    }
  }

  function start(): Promise<void> {
    busy ??= drain().then(
      () => {
        busy = null;
        if (steps.length > 0) void start();
      },
      () => {
        steps.length = 0;
        // Fail closed: a stream that cannot tell what it may show shows nothing more; the client resubscribes.
        feed.fail(new AppError("UNAVAILABLE", "could not re-read who may be seen; resubscribe"));
      },
    );
    return busy;
  }

  return {
    /** Reads after whatever came before (the first call: before any event passes). */
    run(): Promise<void> {
      steps.push(READ);
      return start();
    },
    /** Handles an event now, or once the reads before it are done. */
    hold(fn: () => void): void {
      if (!busy && steps.length === 0) return fn();
      if (steps.length >= MAX_WAITING) return feed.fail(new AppError("LIMIT_EXCEEDED", "too many events while re-reading; resubscribe"));
      steps.push(fn);
    },
  };
}
