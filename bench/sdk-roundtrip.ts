// What the SDK costs on top of the server: registration (identity + 100 EC + 100 Kyber pre-keys, each persisted with
// fsync) and sequential encrypted send -> decrypted delivery latency between two SDK clients. Run e.g.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
//     npx tsx bench/sdk-roundtrip.ts [messages=100]
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { VignetteClient } from "../src/client/index.ts";
import { startServer } from "../test/helpers/server.ts";

const N = Number(process.argv[2]) || 100;
const server = await startServer({ LOG_LEVEL: "silent" });
const root = await mkdtemp(path.join(os.tmpdir(), "vg-bench-"));
try {
  const t0 = performance.now();
  const alice = await VignetteClient.register({ server: server.url, dir: path.join(root, "a"), username: `bench_a_${process.pid}` });
  const registerMs = performance.now() - t0;
  const bob = await VignetteClient.register({ server: server.url, dir: path.join(root, "b"), username: `bench_b_${process.pid}` });
  let arrived: (() => void) | null = null;
  bob.on("message", () => arrived?.());
  await bob.start();
  const latencies: number[] = [];
  for (let i = 0; i < N; i++) {
    const got = new Promise<void>((r) => (arrived = r));
    const s = performance.now();
    await alice.send(bob.userId, `message ${i}`);
    await got;
    latencies.push(performance.now() - s);
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
  console.log(`register (identity + 100 EC + 100 Kyber pre-keys, fsynced): ${registerMs.toFixed(0)} ms`);
  console.log(`send -> decrypted on the receiver, sequential, ${N} messages: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
  await alice.close();
  await bob.close();
} finally {
  await server.close();
  await rm(root, { recursive: true, force: true });
}
