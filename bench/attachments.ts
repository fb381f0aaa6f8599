// bench:attachments — upload and download throughput of 1 MiB and 50 MiB attachments against a real server process
// (PostgreSQL + Redis; blobs on files, or on s3rver with BENCH_STORE=s3), and the server's memory while 10 clients
// upload 50 MiB at once. Baseline in the same run: a raw HTTP PUT/GET of the same bytes to a bare Node server
// (bench/lib/raw-blob-server.mjs) over the same loopback.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import http from "node:http";
import { pipeline } from "node:stream/promises";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Upload } from "tus-js-client";
import { VignetteClient } from "../src/client/client.ts";
import { CreateAttachmentUploadDocument } from "../src/client/generated/graphql.ts";
import { registerDevice, uniqueUsername, type TestDevice } from "../test/helpers/accounts.ts";
import { startS3, type TestS3 } from "../test/helpers/s3.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { startTarget } from "./lib/target.ts";

const MIB = 1024 * 1024;
const STORE = process.env.BENCH_STORE === "s3" ? "s3" : "fs";
const SIZES = [
  { label: "1 MiB", bytes: MIB, runs: Number(process.env.BENCH_SMALL_RUNS ?? 10) },
  { label: "50 MiB", bytes: 50 * MIB, runs: Number(process.env.BENCH_BIG_RUNS ?? 3) },
];
const PARALLEL = 10;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mibps = (bytes: number, ms: number) => Math.round((bytes / MIB / (ms / 1000)) * 10) / 10;
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Resident memory of a process, MiB, from /proc. */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}
function sampleRss(pid: number) {
  let peak = 0;
  const timer = setInterval(() => void rssMiB(pid).then((m) => (peak = Math.max(peak, m)), () => {}), 50);
  return { stop: () => (clearInterval(timer), peak) };
}

async function startRawServer(dir: string) {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./lib/raw-blob-server.mjs", import.meta.url)), dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill("SIGTERM") };
}

function tusUpload(device: TestDevice, origin: string, file: string, size: number): Promise<string> {
  return device.http.request(CreateAttachmentUploadDocument, { input: { size } }).then(
    ({ createAttachmentUpload: g }) =>
      new Promise<void>((resolve, reject) => {
        new Upload(createReadStream(file), {
          uploadUrl: origin + g.uploadUrl,
          uploadSize: size,
          chunkSize: 8 * MIB,
          headers: { authorization: `Bearer ${device.token}` },
          onSuccess: () => resolve(),
          onError: reject,
        }).start();
      }).then(() => g.id),
  );
}

// Both sides of the baseline and the server's own GET go through node:http, as tus-js-client's uploads do, so the
// comparison is of servers, not of HTTP clients (fetch with a streamed body measured far slower here).
function httpPut(url: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "PUT" }, (res) => (res.resume(), res.on("end", resolve)));
    req.on("error", reject);
    pipeline(createReadStream(file), req).catch(reject);
  });
}
function httpGet(url: string, token?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${res.statusCode}`));
        res.resume();
        res.on("end", resolve);
      })
      .on("error", reject);
  });
}

const work = await mkdtemp(path.join(os.tmpdir(), "vg-bench-att-"));
const s3: TestS3 | null = STORE === "s3" ? await startS3() : null;
const target = await startTarget({
  ...(s3 ? s3.env : { ATTACHMENTS_DIR: path.join(work, "blobs") }),
  ...(s3 ? { S3_PART_BYTES: String(8 * MIB) } : {}),
  ATTACHMENT_DAILY_UPLOADS: "100000",
  ATTACHMENT_DAILY_BYTES: String(2 ** 45),
});
const raw = await startRawServer(await mkdtemp(path.join(work, "raw-")));
const origin = `http://127.0.0.1:${target.node.port}`;
const serverPid = target.node.child.pid!;
try {
  console.log(`machine: ${JSON.stringify(machine())}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log(`store: ${STORE}`);
  const device = await registerDevice(target.node.url);
  const alice = await VignetteClient.register({ server: target.node.url, dir: path.join(work, "alice"), username: uniqueUsername("alice") });
  const rows: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const file = path.join(work, `plain-${size.bytes}`);
    await writeFile(file, randomBytes(size.bytes));
    const t = { rawPut: [] as number[], rawGet: [] as number[], tus: [] as number[], get: [] as number[], sdkUp: [] as number[], sdkDown: [] as number[] };
    for (let i = 0; i < size.runs; i++) {
      t.rawPut.push(await timed(() => httpPut(`${raw.url}/b${i}`, file)));
      t.rawGet.push(await timed(() => httpGet(`${raw.url}/b${i}`)));
      let id = "";
      t.tus.push(await timed(async () => (id = await tusUpload(device, origin, file, size.bytes))));
      t.get.push(await timed(() => httpGet(`${origin}/attachments/${id}`, device.token)));
      let pointer = null as Awaited<ReturnType<VignetteClient["attachments"]["upload"]>> | null;
      t.sdkUp.push(await timed(async () => (pointer = await alice.attachments.upload(file, { contentType: "application/octet-stream" }))));
      const to = path.join(work, `out-${i}`);
      t.sdkDown.push(await timed(() => alice.attachments.download(pointer!, { to })));
      await rm(to);
    }
    const row = (what: string, ms: number[], baseline: number[]) => ({
      size: size.label,
      path: what,
      "MiB/s (median)": mibps(size.bytes, median(ms)),
      "ms (median)": Math.round(median(ms)),
      "vs raw HTTP": `${Math.round((median(baseline) / median(ms)) * 100)}%`,
    });
    rows.push(
      row("raw HTTP PUT (baseline)", t.rawPut, t.rawPut),
      row("tus upload (no crypto)", t.tus, t.rawPut),
      row("SDK upload (encrypt + tus)", t.sdkUp, t.rawPut),
      row("raw HTTP GET (baseline)", t.rawGet, t.rawGet),
      row("GET /attachments/<id>", t.get, t.rawGet),
      row("SDK download (GET + verify + decrypt)", t.sdkDown, t.rawGet),
    );
  }
  printTable(`attachments, ${STORE} store (runs: 1 MiB x${SIZES[0].runs}, 50 MiB x${SIZES[1].runs})`, rows);

  // Memory: 10 clients upload 50 MiB each at once (tus, 8 MiB PATCHes), server RSS sampled every 50 ms.
  const big = path.join(work, `plain-${50 * MIB}`);
  const uploaders = await Promise.all(Array.from({ length: PARALLEL }, () => registerDevice(target.node.url)));
  const memRows: Record<string, unknown>[] = [];
  for (const [label, pid, run] of [
    ["vignette server (tus)", serverPid, () => Promise.all(uploaders.map((u) => tusUpload(u, origin, big, 50 * MIB)))],
    [
      "bare Node server (PUT)",
      raw.pid,
      () => Promise.all(uploaders.map((_, i) => httpPut(`${raw.url}/p${i}`, big))),
    ],
  ] as const) {
    const before = await rssMiB(pid);
    const sampler = sampleRss(pid);
    const ms = await timed(run);
    const peak = sampler.stop();
    memRows.push({ process: label, "RSS before (MiB)": before, "RSS peak (MiB)": peak, "aggregate MiB/s": mibps(PARALLEL * 50 * MIB, ms) });
  }
  printTable(`${PARALLEL} parallel 50 MiB uploads`, memRows);
  record("attachments", { ...target.mode, store: STORE }, { rows, memory: memRows });
  await alice.close();
} finally {
  raw.stop();
  await target.stop();
  await s3?.close();
  await rm(work, { recursive: true, force: true });
}
