// BENCH_LOOP_SAMPLE=1: a bench server runs lib/loop-sampler.cjs, and a step's event-loop delay and collector pauses
// are read back from its file for the step's wall-clock window.
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./stats.ts";

interface Line {
  t: number;
  lagP50: number;
  lagP99: number;
  lagMax: number;
  scavenges: number;
  otherGcs: number;
  gcMs: number;
  gcMaxMs: number;
}

export interface LoopSampler {
  nodeArgs: string[];
  env: Record<string, string>;
  /** The step from `from` to `to` (Date.now() times): medians of the 500 ms windows' delay, pauses per second. */
  between(from: number, to: number): Record<string, string>;
  remove(): void;
}

export function loopSampler(name: string): LoopSampler | null {
  if (!process.env.BENCH_LOOP_SAMPLE) return null;
  const file = join(tmpdir(), `loop-${name}-${process.pid}-${Date.now()}.jsonl`);
  return {
    nodeArgs: ["--require", fileURLToPath(new URL("./loop-sampler.cjs", import.meta.url))],
    env: { BENCH_LOOP_SAMPLE_FILE: file },
    between(from, to) {
      let lines: Line[] = [];
      try {
        lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);
      } catch {
        // no window written yet
      }
      const w = lines.filter((l) => l.t > from + 500 && l.t <= to);
      const seconds = Math.max(0.5, (w.length * 500) / 1000);
      const sum = (k: keyof Line) => w.reduce((s, l) => s + l[k], 0);
      return {
        "loop delay p50 / p99 ms": `${median(w.map((l) => l.lagP50))} / ${median(w.map((l) => l.lagP99))}`,
        "GC pause ms/s": (sum("gcMs") / seconds).toFixed(0),
        "scavenges/s, longest ms": `${(sum("scavenges") / seconds).toFixed(1)}, ${Math.max(0, ...w.map((l) => l.gcMaxMs))}`,
      };
    },
    remove: () => rmSync(file, { force: true }),
  };
}
