// bench:idle-gap — what this machine charges for work that comes after an idle gap. One fixed unit of JavaScript
// (JSON out and back of a message-sized object, 20 times) is timed in CPU microseconds back to back (the baseline, as
// a saturated server runs) and after idle gaps of 1, 10 and 100 ms (as a server at a low message rate runs, waking
// for each operation). On a virtual machine a vCPU that idles loses its caches and is woken through the hypervisor,
// so the CPU per message the other benches report at low offered rates is not the CPU per message at the knee.
import { machine, printTable, record } from "./lib/report.ts";

const UNITS = Number(process.env.BENCH_UNITS ?? 300);
const GAPS_MS = (process.env.BENCH_GAPS_MS ?? "1,10,100").split(",").map(Number);
const ROUNDS = 3;

const message = {
  entries: Array.from({ length: 50 }, (_, i) => ({ id: `envelope-${i}`, n: i, body: "ciphertext ".repeat(3) })),
};
function unit(): number {
  let n = 0;
  for (let i = 0; i < 20; i++) n += (JSON.parse(JSON.stringify(message)) as typeof message).entries.length;
  return n;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** CPU µs (user + system) per unit: back to back when gapMs is 0 (yielding to the loop now and then), else one per gap. */
async function cpuPerUnit(gapMs: number, units: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < units; i++) {
    unit();
    if (gapMs > 0) await pause(gapMs);
    else if (i % 50 === 0) await turn();
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / units;
}

console.log(`machine: ${JSON.stringify(machine())}`);
for (let i = 0; i < 2000; i++) unit(); // optimised before anything is timed
const rows: Record<string, unknown>[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const baseline = await cpuPerUnit(0, UNITS * 5);
  const row: Record<string, unknown> = { round, "back to back µs/unit": Math.round(baseline) };
  for (const gap of GAPS_MS) {
    // Fewer units after long gaps keep the run short; each is still one wake-up.
    const perUnit = await cpuPerUnit(gap, gap >= 100 ? Math.ceil(UNITS / 10) : UNITS);
    row[`after ${gap} ms idle µs/unit`] = Math.round(perUnit);
    row[`×${gap} ms`] = (perUnit / baseline).toFixed(2);
  }
  rows.push(row);
}
printTable("bench:idle-gap — CPU per unit of the same JavaScript, back to back and after idle gaps", rows);
record("idle-gap", { units: UNITS, gapsMs: GAPS_MS }, rows);
