// Compares two V8 heap snapshots of one process (bench/heap-connections.ts): objects present only in the second,
// grouped by constructor (count and self size per connection), and for the largest groups what holds them.
// Reads the .heapsnapshot from a Buffer (they outgrow V8's longest string at a few thousand connections).
import { readFileSync } from "node:fs";

interface Snap {
  fields: string[];
  types: string[];
  edgeFields: string[];
  edgeTypes: string[];
  nodes: Uint32Array;
  edges: Uint32Array;
  strings: string[];
  locations: Map<number, string>;
}

function numbersAfter(buf: Buffer, key: string): Uint32Array {
  let i = buf.indexOf(`"${key}":[`);
  if (i < 0) throw new Error(`no ${key}`);
  i += key.length + 4;
  const out: number[] = [];
  let n = 0;
  let inNum = false;
  for (; ; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum) out.push(n);
      n = 0;
      inNum = false;
      if (c === 93) break; // ]
    }
  }
  return Uint32Array.from(out);
}

function stringsOf(buf: Buffer): string[] {
  let i = buf.indexOf('"strings":[');
  i += 11;
  const out: string[] = [];
  while (buf[i] !== 93) {
    while (buf[i] !== 34) {
      if (buf[i] === 93) return out;
      i++;
    }
    let j = i + 1;
    while (!(buf[j] === 34 && !escaped(buf, j))) j++;
    out.push(JSON.parse(buf.toString("utf8", i, j + 1)));
    i = j + 1;
  }
  return out;
}

function escaped(buf: Buffer, j: number): boolean {
  let k = j - 1;
  let n = 0;
  while (buf[k] === 92) (n++, k--);
  return n % 2 === 1;
}

function load(file: string): Snap {
  const buf = readFileSync(file);
  const metaEnd = buf.indexOf('"nodes":[');
  const head = buf.toString("utf8", 0, metaEnd).replace(/,\s*$/, "") + "}";
  const meta = JSON.parse(head).snapshot.meta;
  return {
    fields: meta.node_fields,
    types: meta.node_types[0],
    edgeFields: meta.edge_fields,
    edgeTypes: meta.edge_types[0],
    nodes: numbersAfter(buf, "nodes"),
    edges: numbersAfter(buf, "edges"),
    strings: stringsOf(buf),
    locations: new Map(),
  };
}

function label(s: Snap, i: number): string {
  const nf = s.fields.length;
  const type = s.types[s.nodes[i * nf]];
  const name = s.strings[s.nodes[i * nf + 1]];
  if (type === "object") return name;
  if (type === "closure") return `closure ${name || "(anon)"}${s.locations.get(i) ?? ""}`;
  if (type === "string" || type === "concatenated string" || type === "sliced string") return "(string)";
  if (type === "array") return `(array) ${name}`;
  if (type === "hidden" || type === "object shape" || type === "code") return `(${type}) ${name.slice(0, 40)}`;
  return `(${type}) ${name.slice(0, 40)}`;
}

const [beforeFile, afterFile, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 1);
const before = load(beforeFile);
const after = load(afterFile);
const nf = after.fields.length;
const ef = after.edgeFields.length;
const idOff = after.fields.indexOf("id");
const sizeOff = after.fields.indexOf("self_size");
const ecOff = after.fields.indexOf("edge_count");
// Where each closure of the second snapshot was defined: script (closure -> shared -> script -> name) and line.
{
  const buf = readFileSync(afterFile);
  const locs = numbersAfter(buf, "locations");
  const etO = after.edgeFields.indexOf("type");
  const enO = after.edgeFields.indexOf("name_or_index");
  const toO = after.edgeFields.indexOf("to_node");
  const ecO = after.fields.indexOf("edge_count");
  const first: number[] = [];
  for (let i = 0, e = 0; i < after.nodes.length / nf; i++) (first.push(e), (e += after.nodes[i * nf + ecO] * ef));
  const edge = (node: number, name: string): number => {
    const end = node + 1 < first.length ? first[node + 1] : after.edges.length;
    for (let e = first[node]; e < end; e += ef) {
      const t = after.edgeTypes[after.edges[e + etO]];
      if (t !== "element" && t !== "hidden" && after.strings[after.edges[e + enO]] === name) return after.edges[e + toO] / nf;
    }
    return -1;
  };
  for (let k = 0; k < locs.length; k += 4) {
    const node = locs[k] / nf;
    const sfi = edge(node, "shared");
    let script = sfi >= 0 ? edge(sfi, "script_or_debug_info") : -1;
    if (script >= 0 && after.strings[after.nodes[script * nf + 1]].includes("DebugInfo")) script = edge(script, "script");
    // A Script node is named by its URL.
    const file = script >= 0 ? after.strings[after.nodes[script * nf + 1]].replace(/^.*node_modules\//, "").replace(/^file:\/\/\/work\/wt\/[^/]+\//, "") : `#${locs[k + 1]}`;
    after.locations.set(node, ` @${file}:${locs[k + 2] + 1}`);
  }
}
const oldIds = new Set<number>();
for (let i = 0; i < before.nodes.length; i += nf) oldIds.add(before.nodes[i + idOff]);
const count = after.nodes.length / nf;
const isNew = new Uint8Array(count);
let total = 0;
const groups = new Map<string, { n: number; size: number }>();
for (let i = 0; i < count; i++) {
  if (oldIds.has(after.nodes[i * nf + idOff])) continue;
  isNew[i] = 1;
  const size = after.nodes[i * nf + sizeOff];
  total += size;
  const k = label(after, i);
  const g = groups.get(k) ?? { n: 0, size: 0 };
  g.n++;
  g.size += size;
  groups.set(k, g);
}
const totalOld = (s: Snap) => {
  let t = 0;
  for (let i = 0; i < s.nodes.length; i += nf) t += s.nodes[i + sizeOff];
  return t;
};
console.log(`heap: before ${(totalOld(before) / 2 ** 20).toFixed(1)} MiB, after ${(totalOld(after) / 2 ** 20).toFixed(1)} MiB; new objects ${(total / 2 ** 20).toFixed(1)} MiB = ${(total / N / 1024).toFixed(2)} KiB per connection (N=${N})`);
const top = [...groups.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, Number(process.env.TOP ?? 45));
console.log("bytes/conn  objs/conn  constructor");
for (const [k, g] of top) console.log(`${(g.size / N).toFixed(0).padStart(9)}  ${(g.n / N).toFixed(2).padStart(9)}  ${k}`);

// Who holds the new objects of the biggest groups: the label of each retainer (new or old) by edge name.
const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e;
  e += after.nodes[i * nf + ecOff] * ef;
}
firstEdge[count] = after.edges.length;
const toOff = after.edgeFields.indexOf("to_node");
const etOff = after.edgeFields.indexOf("type");
const enOff = after.edgeFields.indexOf("name_or_index");
const watch = new Set((process.env.RETAINERS ?? top.slice(0, 12).map(([k]) => k).join("|")).split("|"));
const retainers = new Map<string, Map<string, number>>();
for (let i = 0; i < count; i++) {
  for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
    const to = after.edges[e + toOff] / nf;
    if (!isNew[to]) continue;
    const k = label(after, to);
    if (!watch.has(k)) continue;
    const et = after.edgeTypes[after.edges[e + etOff]];
    if (et === "weak") continue;
    const name = et === "element" || et === "hidden" ? `[${et}]` : after.strings[after.edges[e + enOff]];
    const r = `${label(after, i)}.${name}`;
    const m = retainers.get(k) ?? new Map<string, number>();
    m.set(r, (m.get(r) ?? 0) + 1);
    retainers.set(k, m);
  }
}
for (const k of watch) {
  const m = retainers.get(k);
  if (!m) continue;
  const list = [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(`\n${k} held by:`);
  for (const [r, n] of list) console.log(`  ${(n / N).toFixed(2).padStart(8)}/conn  ${r.slice(0, 140)}`);
}

// Dominator tree of the second snapshot (Cooper–Harvey–Kennedy over non-weak edges): which new objects hold the
// new memory. A "top" is a new object whose immediate dominator is old (a connection's entry points: its socket,
// its subscription's iterator, a bus listener...); listed with the memory only they keep alive.
{
  const targetsOf = (i: number, f: (to: number) => void) => {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
      if (after.edgeTypes[after.edges[e + etOff]] === "weak") continue;
      f(after.edges[e + toOff] / nf);
    }
  };
  const order = new Int32Array(count).fill(-1); // postorder number
  const post: number[] = [];
  {
    const stack: number[] = [0];
    const iter: number[] = [firstEdge[0]];
    const seen = new Uint8Array(count);
    seen[0] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      let e = iter[iter.length - 1];
      let pushed = false;
      while (e < firstEdge[top + 1]) {
        const et = after.edgeTypes[after.edges[e + etOff]];
        const to = after.edges[e + toOff] / nf;
        e += ef;
        if (et === "weak" || seen[to]) continue;
        seen[to] = 1;
        iter[iter.length - 1] = e;
        stack.push(to);
        iter.push(firstEdge[to]);
        pushed = true;
        break;
      }
      if (!pushed) {
        stack.pop();
        iter.pop();
        order[top] = post.length;
        post.push(top);
      }
    }
  }
  // predecessors
  const predCount = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) if (order[i] >= 0) targetsOf(i, (to) => predCount[to + 1]++);
  for (let i = 0; i < count; i++) predCount[i + 1] += predCount[i];
  const preds = new Uint32Array(predCount[count]);
  const fill = predCount.slice();
  for (let i = 0; i < count; i++) if (order[i] >= 0) targetsOf(i, (to) => (preds[fill[to]++] = i));
  const idom = new Int32Array(count).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (order[a] < order[b]) a = idom[a];
      while (order[b] < order[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = post.length - 2; k >= 0; k--) {
      const b = post[k];
      let d = -1;
      for (let p = predCount[b]; p < predCount[b + 1]; p++) {
        const q = preds[p];
        if (order[q] < 0 || idom[q] < 0) continue;
        d = d < 0 ? q : intersect(q, d);
      }
      if (d >= 0 && idom[b] !== d) (idom[b] = d, (changed = true));
    }
  }
  const retained = new Float64Array(count);
  for (let i = 0; i < count; i++) retained[i] = after.nodes[i * nf + sizeOff];
  for (const i of post) if (i !== 0 && idom[i] >= 0) retained[idom[i]] += retained[i];
  const tops = new Map<string, { n: number; size: number }>();
  let unreachable = 0;
  for (let i = 0; i < count; i++) {
    if (!isNew[i]) continue;
    if (idom[i] < 0) {
      unreachable += after.nodes[i * nf + sizeOff];
      continue;
    }
    if (isNew[idom[i]]) continue;
    const k = `${label(after, i)}  <-  ${label(after, idom[i])}`;
    const g = tops.get(k) ?? { n: 0, size: 0 };
    g.n++;
    g.size += retained[i];
    tops.set(k, g);
  }
  console.log(`\nnew objects by what keeps them alive (retained bytes/conn, count/conn, new object <- its old dominator); unreachable ${(unreachable / N).toFixed(0)} B/conn`);
  for (const [k, g] of [...tops.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 30))
    console.log(`${(g.size / N).toFixed(0).padStart(9)}  ${(g.n / N).toFixed(2).padStart(6)}  ${k.slice(0, 160)}`);
  // One level down inside the heaviest tops: what their dominated children are.
  const children = new Map<string, Map<string, { n: number; size: number }>>();
  const heavy = new Set([...tops.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, Number(process.env.DRILL ?? 6)).map(([k]) => k));
  for (let i = 0; i < count; i++) {
    if (!isNew[i] || idom[i] < 0) continue;
    const p = idom[i];
    if (!isNew[p] || isNew[idom[p]]) continue;
    const pk = `${label(after, p)}  <-  ${label(after, idom[p])}`;
    if (!heavy.has(pk)) continue;
    const m = children.get(pk) ?? new Map();
    const ck = label(after, i);
    const g = m.get(ck) ?? { n: 0, size: 0 };
    g.n++;
    g.size += retained[i];
    m.set(ck, g);
    children.set(pk, m);
  }
  for (const [pk, m] of children) {
    console.log(`\ninside ${pk.slice(0, 150)}:`);
    for (const [ck, g] of [...m.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 14))
      console.log(`${(g.size / N).toFixed(0).padStart(9)}  ${(g.n / N).toFixed(2).padStart(6)}  ${ck.slice(0, 140)}`);
  }
  // TREE=<label>: the dominator subtrees of the new objects with that label that old objects keep alive, merged by
  // path (edge name and label at each level), in bytes per connection, down to TREE_DEPTH levels and TREE_MIN bytes.
  if (process.env.TREE) {
    const kids = new Map<number, number[]>();
    for (let i = 1; i < count; i++) if (idom[i] >= 0) (kids.get(idom[i]) ?? kids.set(idom[i], []).get(idom[i])!).push(i);
    const edgeTo = (from: number, to: number) => {
      for (let e = firstEdge[from]; e < firstEdge[from + 1]; e += ef) {
        if (after.edges[e + toOff] / nf !== to) continue;
        const et = after.edgeTypes[after.edges[e + etOff]];
        return et === "element" || et === "hidden" ? `[${et}]` : after.strings[after.edges[e + enOff]];
      }
      return "(via another path)";
    };
    interface Merged { n: number; size: number; self: number; kids: Map<string, Merged> }
    const merged = (): Merged => ({ n: 0, size: 0, self: 0, kids: new Map() });
    const depth = Number(process.env.TREE_DEPTH ?? 8);
    const min = Number(process.env.TREE_MIN ?? 20) * N;
    const add = (m: Merged, i: number, d: number) => {
      m.n++;
      m.size += retained[i];
      m.self += after.nodes[i * nf + sizeOff];
      if (d >= depth) return;
      for (const c of kids.get(i) ?? []) {
        const k = `${edgeTo(i, c)}: ${label(after, c).slice(0, 100)}`;
        add(m.kids.get(k) ?? m.kids.set(k, merged()).get(k)!, c, d + 1);
      }
    };
    const root = merged();
    for (let i = 0; i < count; i++) if (isNew[i] && idom[i] >= 0 && !isNew[idom[i]] && label(after, i) === process.env.TREE) add(root, i, 0);
    console.log(`\n${process.env.TREE} kept alive by old objects, merged (bytes/conn retained, self, count/conn):`);
    const print = (m: Merged, d: number, name: string) => {
      console.log(`${"  ".repeat(d)}${(m.size / N).toFixed(0).padStart(6)} ${(m.self / N).toFixed(0).padStart(5)} ${(m.n / N).toFixed(2).padStart(6)}  ${name}`);
      for (const [k, c] of [...m.kids.entries()].sort((a, b) => b[1].size - a[1].size)) if (c.size >= min) print(c, d + 1, k);
    };
    print(root, 0, process.env.TREE);
  }
}

// STRINGS=1: the new strings that are not part of another string, by what holds them, with an example each.
if (process.env.STRINGS) {
  const holders = new Map<string, { n: number; size: number; example: string }>();
  const typeOff = after.fields.indexOf("type");
  const nameOffset = after.fields.indexOf("name");
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
      const to = after.edges[e + toOff] / nf;
      if (!isNew[to]) continue;
      const t = after.types[after.nodes[to * nf + typeOff]];
      if (!t.includes("string")) continue;
      const en = after.edgeTypes[after.edges[e + etOff]];
      const edgeName = en === "element" || en === "hidden" ? `[${en}]` : after.strings[after.edges[e + enOff]];
      if (label(after, i) === "(string)") continue;
      const k = `${label(after, i)}.${edgeName} (${t})`;
      const h = holders.get(k) ?? { n: 0, size: 0, example: after.strings[after.nodes[to * nf + nameOffset]].slice(0, 80) };
      h.n++;
      h.size += after.nodes[to * nf + sizeOff];
      holders.set(k, h);
    }
  }
  console.log("\nnew strings by holder (count/conn, self bytes/conn of the outer string only):");
  for (const [k, h] of [...holders.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 30))
    console.log(`${(h.n / N).toFixed(2).padStart(6)}  ${(h.size / N).toFixed(0).padStart(5)}  ${k.slice(0, 90)}  e.g. ${JSON.stringify(h.example)}`);
}

// PATHS=<label>: the five largest new objects with that label and a chain of what holds each (first strong
// retainer at every step, up to 8), to name the owner of a big table.
if (process.env.PATHS) {
  const holderOf = new Int32Array(count).fill(-1);
  const holderEdge: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
      const to = after.edges[e + toOff] / nf;
      const et = after.edgeTypes[after.edges[e + etOff]];
      if (et === "weak" || holderOf[to] >= 0) continue;
      holderOf[to] = i;
      holderEdge[to] = et === "element" || et === "hidden" ? `[${after.edges[e + enOff]}]` : after.strings[after.edges[e + enOff]];
    }
  }
  const sized = [...Array(count).keys()].filter((i) => isNew[i] && label(after, i) === process.env.PATHS);
  sized.sort((a, b) => after.nodes[b * nf + sizeOff] - after.nodes[a * nf + sizeOff]);
  for (const i of sized.slice(0, 5)) {
    const chain: string[] = [];
    for (let j = i, k = 0; k < 8 && holderOf[j] >= 0; k++, j = holderOf[j]) chain.push(`${holderEdge[j]} <- ${label(after, holderOf[j]).slice(0, 60)}`);
    console.log(`\n${after.nodes[i * nf + sizeOff]} B ${process.env.PATHS}: ${chain.join("  |  ")}`);
  }
}
