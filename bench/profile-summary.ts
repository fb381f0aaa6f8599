// Summarises a V8 .cpuprofile (from BENCH_PROFILE=1): self time by function and by package, top entries.
//   npx tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [top=25]
import { readFileSync } from "node:fs";

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
const [file, topArg] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const pkg = (url: string) => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes("/src/")) return "our code (src/)";
  if (url.startsWith("node:") || url === "") return "node internals / native / GC";
  return url.split("/").slice(-2).join("/");
};
const fn = new Map<string, number>();
const pk = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName || "(anonymous)";
  const key = `${name} ${n.callFrame.url.replace(/^.*node_modules\//, "").replace(/^.*\/src\//, "src/")}:${n.callFrame.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const p = ["(idle)", "(program)", "(garbage collector)"].includes(name) ? name : pkg(n.callFrame.url);
  pk.set(p, (pk.get(p) ?? 0) + t);
}
const top = Number(topArg ?? 25);
const pct = (t: number) => `${((t / total) * 100).toFixed(1)}%`;
console.log(`total ${(total / 1e6).toFixed(1)} s sampled\n\nby package (self time):`);
for (const [k, t] of [...pk].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t).padStart(6)}  ${k}`);
console.log(`\nby function (self time):`);
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t).padStart(6)}  ${k}`);
