// bench:sdk — the SDK's own throughput: one SDK pair (VignetteClient, accounts on disk) where alice sends as fast as
// it can (BENCH_SDK_IN_FLIGHT sends outstanding) and bob decrypts, stores, hands each message to the app and
// acknowledges it (batched, src/client/acks.ts). Baseline in the same run: the same plaintexts through libsignal
// alone (signalEncrypt / signalDecrypt through in-memory stores: SignalDevice over MemoryKeyValueStore, no disk, no
// network). An app's ceiling is the slower of the SDK and the server.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { VignetteClient } from "../src/client/index.ts";
import { encodeContent } from "../src/client/content.ts";
import { registerDevice, startSessions } from "../test/helpers/accounts.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { startTarget } from "./lib/target.ts";

const N = Number(process.env.BENCH_SDK_MESSAGES ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_SDK_IN_FLIGHT ?? 16);
const TEXT = "x".repeat(150);

async function sdkPair(url: string, root: string) {
  const alice = await VignetteClient.register({ server: url, dir: path.join(root, "a"), username: `sdk_a_${process.pid}` });
  const bob = await VignetteClient.register({ server: url, dir: path.join(root, "b"), username: `sdk_b_${process.pid}` });
  let got = 0;
  let all: () => void = () => {};
  const done = new Promise<void>((r) => (all = r));
  bob.on("message", () => {
    if (++got === N + 1) all();
  });
  // Both connected, as running apps are: alice also gets (and acknowledges) the delivered receipts.
  await Promise.all([alice.start(), bob.start()]);
  await alice.send(bob.userId, "warm-up: the session's first (pre-key) message");
  while (got < 1) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  let next = 0;
  let sentAll = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < N) {
        next++;
        await alice.send(bob.userId, TEXT);
      }
      sentAll = performance.now();
    }),
  );
  const deadline = setTimeout(() => all(), 60_000);
  await done;
  clearTimeout(deadline);
  const t1 = performance.now();
  await alice.close();
  await bob.close();
  return { sentPerSecond: Math.round((N / (sentAll - t0)) * 1000), receivedPerSecond: Math.round(((got - 1) / (t1 - t0)) * 1000), received: got - 1 };
}

/** The same plaintexts (as the SDK encodes them) through libsignal alone: encrypt all, then decrypt all. */
async function rawSignal(url: string) {
  const alice = await registerDevice(url);
  const bob = await registerDevice(url);
  await startSessions(alice, bob.userId);
  const first = await alice.signal.encrypt(alice.address, bob.address, encodeContent({ body: { kind: "text", text: "warm-up" }, sentAt: Date.now() }));
  await bob.signal.decrypt(bob.address, alice.address, first.type, first.body);
  const plain = Array.from({ length: N }, () => encodeContent({ body: { kind: "text", text: TEXT }, sentAt: Date.now() }));
  const t0 = performance.now();
  const sealed = [];
  for (const p of plain) sealed.push(await alice.signal.encrypt(alice.address, bob.address, p));
  const t1 = performance.now();
  for (const s of sealed) await bob.signal.decrypt(bob.address, alice.address, s.type, s.body);
  const t2 = performance.now();
  return { encryptPerSecond: Math.round((N / (t1 - t0)) * 1000), decryptPerSecond: Math.round((N / (t2 - t1)) * 1000), bothPerSecond: Math.round((N / (t2 - t0)) * 1000) };
}

const target = await startTarget({ RATE_LIMITS: "off" });
const root = await mkdtemp(path.join(os.tmpdir(), "vg-bench-sdk-"));
try {
  console.log(`machine: ${JSON.stringify(machine())}; load average at start ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  const sdk = await sdkPair(target.node.url, root);
  const raw = await rawSignal(target.node.url);
  printTable(`bench:sdk — ${N} text messages of ${TEXT.length} characters, one SDK pair, ${IN_FLIGHT} sends in flight (messages/s)`, [
    { path: "SDK: alice.send (encrypt, sendMessage, store)", "msg/s": sdk.sentPerSecond, "ours / libsignal": (sdk.sentPerSecond / raw.encryptPerSecond).toFixed(3) },
    { path: "SDK: bob has it (decrypt, store, app handler, ack)", "msg/s": sdk.receivedPerSecond, "ours / libsignal": (sdk.receivedPerSecond / raw.decryptPerSecond).toFixed(3) },
    { path: "libsignal alone: encrypt", "msg/s": raw.encryptPerSecond, "ours / libsignal": "" },
    { path: "libsignal alone: decrypt", "msg/s": raw.decryptPerSecond, "ours / libsignal": "" },
    { path: "libsignal alone: encrypt + decrypt", "msg/s": raw.bothPerSecond, "ours / libsignal": "" },
  ]);
  if (sdk.received < N) console.log(`only ${sdk.received} of ${N} arrived within 60 s`);
  record("sdk", { ...target.mode, messages: N, inFlight: IN_FLIGHT }, { sdk, libsignal: raw });
} finally {
  await rm(root, { recursive: true, force: true });
  await target.stop();
}
