// Summarises a V8 profile from the bench server, top entries by function and by package:
//   npx tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [top=25]   (BENCH_PROFILE=1)
//   npx tsx bench/profile-summary.ts bench/results/profiles/<file>.heapprofile [top=25]  (BENCH_ALLOC_PROFILE=...)
// A .cpuprofile gives self time; WINDOW_S=4 keeps only the busiest 4 s of it (a whole-life profile is mostly setup
// and idle), and src/ functions are also listed by inclusive time. A .heapprofile gives bytes allocated.
import { readFileSync } from "node:fs";

interface Frame { functionName: string; url: string; lineNumber: number }
interface CpuNode { id: number; callFrame: Frame; children?: number[] }
interface HeapNode { callFrame: Frame; selfSize: number; children: HeapNode[] }

const [file, topArg] = process.argv.slice(2);
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8"));

const pkg = (name: string, url: string) => {
  if (["(idle)", "(program)", "(garbage collector)"].includes(name)) return name;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes("/src/")) return "our code (src/)";
  if (url.startsWith("node:") || url === "") return "node internals / native / GC";
  return url.split("/").slice(-2).join("/");
};
const label = (f: Frame) =>
  `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*node_modules\//, "").replace(/^.*\/src\//, "src/")}:${f.lineNumber + 1}`;

const self = new Map<string, number>();
const byPackage = new Map<string, number>();
const inclusive = new Map<string, number>();
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
/** Counts `amount` for the frame at the top of `stack` (innermost last). */
function count(stack: Frame[], amount: number) {
  const leaf = stack[stack.length - 1];
  add(self, label(leaf), amount);
  add(byPackage, pkg(leaf.functionName, leaf.url), amount);
  for (const l of new Set(stack.filter((f) => f.url.includes("/src/")).map(label))) add(inclusive, l, amount);
}

let unit: string;
let scale: number;
if (file.endsWith(".heapprofile")) {
  [unit, scale] = ["MB allocated", 1e6];
  const walk = (n: HeapNode, stack: Frame[]) => {
    const here = [...stack, n.callFrame];
    if (n.selfSize) count(here, n.selfSize);
    for (const c of n.children) walk(c, here);
  };
  walk(profile.head as HeapNode, []);
} else {
  [unit, scale] = ["s sampled", 1e6];
  const nodes = profile.nodes as CpuNode[];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const samples = profile.samples as number[];
  const deltas = profile.timeDeltas as number[];
  const at: number[] = [];
  deltas.reduce((t, d, i) => (at[i] = t + d), profile.startTime as number);
  let [from, to] = [0, samples.length - 1];
  const windowUs = Number(process.env.WINDOW_S ?? 0) * 1e6;
  if (windowUs > 0) {
    // The window with the fewest idle samples; SKIP_S leaves out the start (module loading is busier than any load).
    const skipUs = Number(process.env.SKIP_S ?? 0) * 1e6;
    const idle = samples.map((id, i) => at[i] - profile.startTime < skipUs || byId.get(id)!.callFrame.functionName === "(idle)");
    let [best, busy, j] = [-1, 0, 0];
    for (let i = 0; i < samples.length; i++) {
      busy += idle[i] ? 0 : 1;
      while (at[i] - at[j] > windowUs) busy -= idle[j++] ? 0 : 1;
      if (busy > best) [best, from, to] = [busy, j, i];
    }
  }
  for (let i = from; i <= to; i++) {
    const stack: Frame[] = [];
    for (let id: number | undefined = samples[i]; id !== undefined; id = parent.get(id)) stack.unshift(byId.get(id)!.callFrame);
    count(stack, deltas[i] ?? 0);
  }
}

const total = [...self.values()].reduce((a, b) => a + b, 0);
const pct = (t: number) => `${((t / total) * 100).toFixed(1)}%`.padStart(6);
const list = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}:`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);
};
console.log(`total ${(total / scale).toFixed(1)} ${unit}`);
list("by package (self)", byPackage);
list("by function (self)", self);
list("our code by function (inclusive)", inclusive);
