// Metadata retention (HARDENING.md "Metadata retention"): a periodic worker that deletes metadata nobody needs any
// more. Each domain owns its purge, which deletes one bounded batch in one short statement (SKIP LOCKED: it never
// waits for, nor long blocks, the hot path, and nodes running it at once take different rows). The worker repeats
// a purge while its batches come back full, up to a cap per run, so a backlog drains over a few runs instead of in
// one long delete.
import type { Services } from "./graphql/builder.ts";
import type { Logger } from "./logger.ts";

/** Deletes at most `limit` rows that `now` makes unneeded; returns how many went. */
export type Purge = (now: Date, limit: number) => Promise<number>;

export interface RetentionBatches {
  /** Rows one statement deletes at most. */
  batch: number;
  /** Statements one purge runs at most per run. */
  maxBatches: number;
}

export const RETENTION_BATCHES: RetentionBatches = { batch: 500, maxBatches: 20 };

/** Each table's owner and its purge. */
export function retentionPurges(services: Services): Record<string, Purge> {
  return {
    messages: services.messages.purge,
    groupEvents: services.groups.sweep,
    deviceLinks: services.devices.purgeLinks,
    keyPackages: services.keyPackages.purge,
  };
}

/** One run: every purge in batches until a batch comes back short or the cap is reached; rows deleted per purge. */
export async function runRetention(
  purges: Record<string, Purge>,
  now: Date,
  logger: Logger,
  { batch, maxBatches }: RetentionBatches = RETENTION_BATCHES,
): Promise<Record<string, number>> {
  const done: Record<string, number> = {};
  for (const [name, purge] of Object.entries(purges)) {
    done[name] = 0;
    try {
      for (let i = 0; i < maxBatches; i++) {
        const n = await purge(now, batch);
        done[name] += n;
        if (n < batch) break;
      }
    } catch (err) {
      // One table's trouble does not keep the others from their retention; the next run tries again.
      logger.warn({ purge: name, err: (err as Error).message }, "retention purge failed");
    }
  }
  return done;
}

/** Runs retention every `intervalMs`, one run at a time; the returned function stops it after the current run. */
export function startRetention(services: Services, intervalMs: number, logger: Logger): () => Promise<void> {
  const purges = retentionPurges(services);
  let running: Promise<void> | null = null;
  const run = () => {
    running ??= (async () => {
      const done = await runRetention(purges, new Date(), logger);
      if (Object.values(done).some((n) => n > 0)) logger.debug(done, "retention purged metadata");
    })().finally(() => (running = null));
  };
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
