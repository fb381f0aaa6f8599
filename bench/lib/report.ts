// Prints a benchmark's table and appends one JSON line per run to bench/results/results.jsonl.
import { appendFileSync, mkdirSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

export function machine() {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? "unknown",
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function printTable(title: string, rows: Record<string, unknown>[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((x, i) => x.padEnd(width[i])).join(" | ")} |`;
  console.log(line(cols));
  console.log(`|${width.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(cols.map((c) => String(r[c] ?? ""))));
}

export function record(bench: string, mode: Record<string, unknown>, results: unknown): void {
  const dir = fileURLToPath(new URL("../results", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const entry = { bench, at: new Date().toISOString(), machine: machine(), mode, results };
  appendFileSync(`${dir}/results.jsonl`, `${JSON.stringify(entry)}\n`);
  console.log(`\nrecorded in bench/results/results.jsonl (${bench})`);
}
