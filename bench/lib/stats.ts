// Percentiles and rates for benchmark samples.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarise(samples: number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { count: s.length, p50: r(percentile(s, 50)), p95: r(percentile(s, 95)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN) };
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Calls fn at `rate` per second for `durationMs`, keeping at most `maxInFlight` open; returns when all settle. */
export async function openLoop(
  rate: number,
  durationMs: number,
  maxInFlight: number,
  fn: () => Promise<void>,
): Promise<{ started: number; skipped: number; elapsedMs: number; startedAt: number }> {
  const start = performance.now();
  let started = 0;
  let skipped = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const interval = 1000 / rate;
  while (performance.now() - start < durationMs) {
    const due = Math.floor((performance.now() - start) / interval);
    while (started + skipped < due) {
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      started++;
      inFlight++;
      const p = fn().finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.allSettled([...pending]);
  return { started, skipped, elapsedMs: performance.now() - start, startedAt: start };
}
