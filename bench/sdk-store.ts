// bench:sdk-store — the SDK's SQLite account store against the file store it replaced (the SDK at BASELINE, loaded
// from git), same machine, same run: (1) receive-and-store rate of one client draining N queued messages from a local
// server (decrypt, persist, hand over, ack); (2) an account with 100,000 stored messages: open it (and the start-up
// read of expiring messages), list the newest 50 of one conversation, one search (the file store has no search: the
// app had to read every message and filter), and the one-time migration of such a directory. Run:
//   npm run bench:sdk-store [-- receive=300 stored=100000]
import { IdentityKeyPair } from "@signalapp/libsignal-client";
import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as current from "../src/client/index.ts";
import { SqliteAccountStore } from "../src/client/store/sqlite-store.ts";
import type { MessageRecord } from "../src/client/store/types.ts";
import { startServer } from "../test/helpers/server.ts";
import { printTable, record } from "./lib/report.ts";

/** The last commit whose SDK kept the account directory as one file per key. */
const BASELINE = "f01c35a";
const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`${name}=`))?.split("=")[1] ?? dflt);
const RECEIVE = arg("receive", 300);
const STORED = arg("stored", 100_000);
const CONVERSATIONS = 100;
/** Every hit (1 in 1,000 messages), to compare with the file store, which can only return them all. */
const MAX_HITS = 1000;
const root = fileURLToPath(new URL("..", import.meta.url));
const WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee lunch dinner meeting train station tomorrow tonight weekend office coffee pizza ramen movie concert".split(" ");

type Client = current.VignetteClient;
type Sdk = { VignetteClient: typeof current.VignetteClient };

/** The baseline SDK's source, extracted from git next to this repository's node_modules. */
async function baselineSdk(): Promise<Sdk> {
  const dir = path.join(root, "bench/results", `sdk-${BASELINE}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const tar = execFileSync("git", ["-C", root, "archive", BASELINE, "src/client"]);
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  await cp(path.join(root, "src/client/generated"), path.join(dir, "src/client/generated"), { recursive: true });
  return (await import(path.join(dir, "src/client/index.ts"))) as Sdk;
}

const ms = (t0: number) => performance.now() - t0;
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, ms(t0)];
}

async function receiveRate(sdk: Sdk, serverUrl: string, tmp: string, label: string) {
  const alice = await current.VignetteClient.register({ server: serverUrl, dir: path.join(tmp, `${label}-a`), username: `bs_a_${label}_${process.pid}` });
  const bobDir = path.join(tmp, `${label}-b`);
  const bob0 = (await sdk.VignetteClient.register({ server: serverUrl, dir: bobDir, username: `bs_b_${label}_${process.pid}` })) as Client;
  await bob0.close();
  for (let i = 0; i < RECEIVE; i++) await alice.send(bob0.userId, `queued message ${i} ${WORDS[i % WORDS.length]}`);
  const bob = (await sdk.VignetteClient.open(bobDir)) as Client;
  let n = 0;
  const done = new Promise<void>((resolve) => bob.on("message", () => void (++n === RECEIVE && resolve())));
  const t0 = performance.now();
  await bob.start();
  await done;
  const elapsed = ms(t0);
  await bob.close();
  await alice.close();
  return { store: label, messages: RECEIVE, "seconds": (elapsed / 1000).toFixed(2), "messages/s": (RECEIVE / (elapsed / 1000)).toFixed(0) };
}

function syntheticMessages(self: string): { messages: MessageRecord[]; peers: string[] } {
  const peers = Array.from({ length: CONVERSATIONS }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`);
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  const messages = Array.from({ length: STORED }, (_, i): MessageRecord => {
    const peer = peers[i % CONVERSATIONS];
    const words = Array.from({ length: 8 }, (_, k) => WORDS[(i * 7 + k * 13) % WORDS.length]);
    if (i % 1000 === 500) words.push("zanzibar");
    const at = t0 + i * 1000;
    return {
      messageId: `10000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      conversationId: null,
      peerUserId: peer,
      direction: i % 2 ? "in" : "out",
      from: i % 2 ? { userId: peer, deviceId: 1 } : { userId: self, deviceId: 1 },
      sentAt: at,
      serverTimestamp: new Date(at).toISOString(),
      body: { kind: "text", text: words.join(" ") },
      expiresAt: null,
    };
  });
  return { messages, peers };
}

const identity = IdentityKeyPair.generate();
/** The same identity in both layouts, so open() opens rather than generates one. */
const SELF_KEYS = [
  { key: "self/identity", value: new Uint8Array(identity.serialize()) },
  { key: "self/registrationId", value: new Uint8Array(Buffer.from("4242")) },
];
const INFO = { server: "http://127.0.0.1:9/graphql", userId: "20000000-0000-4000-8000-000000000001", deviceId: 1, token: "bench", username: "bench" };

/** The file store's layout, written without fsync (the content is the same as the SDK's fsynced writes). */
async function fileStoreDir(dir: string, messages: MessageRecord[]) {
  await mkdir(path.join(dir, "store"), { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, "account.json"), JSON.stringify(INFO), { mode: 0o600 });
  const name = (k: string) => Buffer.from(k, "utf8").toString("base64url");
  for (const { key, value } of SELF_KEYS) await writeFile(path.join(dir, "store", name(key)), value, { mode: 0o600 });
  for (let i = 0; i < messages.length; i += 500)
    await Promise.all(messages.slice(i, i + 500).map((m) => writeFile(path.join(dir, "store", name(`msg/${m.messageId}`)), JSON.stringify(m), { mode: 0o600 })));
}

async function sqliteDir(dir: string, messages: MessageRecord[]) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = SqliteAccountStore.open(path.join(dir, "account.db"));
  s.applySync({ info: INFO, kv: SELF_KEYS });
  for (let i = 0; i < messages.length; i += 10_000) s.applySync({ messages: messages.slice(i, i + 10_000) });
  await s.close();
}

async function largeAccount(sdk: Sdk, dir: string, label: string, peer: string, sqlite: boolean) {
  const [client, openMs] = await timed(() => sdk.VignetteClient.open(dir) as Promise<Client>);
  const [, sweepMs] = await timed(() => (client as unknown as { sweepExpired(): Promise<void> }).sweepExpired());
  const list = () => (sqlite ? client.messages(peer, { limit: 50 }) : client.messages(peer).then((all) => all.slice(-50).reverse()));
  const [page, listMs] = await timed(list);
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) warm.push((await timed(list))[1]);
  const listWarmMs = warm.sort((a, b) => a - b)[2];
  const search = async () => {
    if (sqlite) return client.search("zanzibar", { limit: MAX_HITS });
    const all = await client.messages();
    return all.filter((m) => m.body.kind === "text" && m.body.text.includes("zanzibar")).reverse();
  };
  const [hits, searchMs] = await timed(search);
  await client.close();
  if (page.length !== Math.min(50, STORED / CONVERSATIONS) || hits.length !== Math.ceil(STORED / 1000)) throw new Error(`${label}: ${page.length} listed, ${hits.length} found`);
  return { store: label, "open ms": openMs.toFixed(1), "start-up read ms": sweepMs.toFixed(1), "newest 50 ms (cold)": listMs.toFixed(1), "newest 50 ms (warm, median of 5)": listWarmMs.toFixed(1), "search ms": searchMs.toFixed(1) };
}

const tmp = await mkdtemp(path.join(os.tmpdir(), "vg-bench-store-"));
const server = await startServer({ LOG_LEVEL: "silent" });
try {
  const baseline = await baselineSdk();
  const receive = [await receiveRate(current, server.url, tmp, "sqlite"), await receiveRate(baseline, server.url, tmp, "files")];
  printTable(`receive and store: one client drains ${RECEIVE} queued messages (decrypt, persist, hand over, ack)`, receive);

  const { messages, peers } = syntheticMessages(INFO.userId);
  await sqliteDir(path.join(tmp, "big-sqlite"), messages);
  await fileStoreDir(path.join(tmp, "big-files"), messages);
  await fileStoreDir(path.join(tmp, "big-migrate"), messages);
  const large = [
    await largeAccount(current, path.join(tmp, "big-sqlite"), "sqlite", peers[7], true),
    await largeAccount(baseline, path.join(tmp, "big-files"), "files", peers[7], false),
  ];
  printTable(`an account with ${STORED} stored messages in ${CONVERSATIONS} conversations`, large);
  const [, migrateMs] = await timed(async () => (await current.AccountDirectory.open(path.join(tmp, "big-migrate"))).close());
  console.log(`\nmigrating the ${STORED}-message file-store directory on first open: ${(migrateMs / 1000).toFixed(1)} s`);
  record("sdk-store", { receive: RECEIVE, stored: STORED, baseline: BASELINE }, { receive, large, migrateMs: Math.round(migrateMs) });
} finally {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
}
