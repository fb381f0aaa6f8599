// bench:group — MLS group delivery. (1) One application message to a 1,500-member group: the time until the last
// of 1,500 subscribed devices has it, from the sendGroupMessage call and from its answer. (2) Application messages
// per second into a 50-member group, offered in steps, with the latency until all 49 other members have each one.
// In (2) the members acknowledge every group event they receive (ackEnvelopes, batched per socket as the SDK batches,
// src/client/acks.ts), and a message counts once all 49 acknowledgements were answered; a second pass without
// acknowledgements gives the send-only figure of earlier rounds.
// Baseline: the same fan-out through a bare `ws` relay in its own process.
// Setup (not measured): one real ts-mls member creates each group; the other members are devices written into the
// database (bench/lib/seed.ts) and into the group's member rows at epoch 0, as a commit adding them would leave
// them. They hold an `inbox` subscription and count what arrives; they do not decrypt (the server cannot tell).
// The application messages are real: encrypted by the creator with ts-mls before the timed part.
import pg from "pg";
import { createApplicationMessage } from "ts-mls";
import { encodeMlsMessage } from "ts-mls/message.js";
import { AckEnvelopesDocument, GroupInboxDocument, SendGroupMessageDocument } from "../src/client/generated/graphql.ts";
import { AckQueue } from "../src/client/acks.ts";
import { mlsSuite } from "../src/client/mls/key-packages.ts";
import { mlsMember, type MlsMember } from "../test/helpers/groups.ts";
import { connectGql, operation, type GqlSocket } from "./lib/gqlws.ts";
import { CpuMeter } from "./lib/cpu-meter.ts";
import { rawFanout, startRawRelay } from "./lib/raw-relay.ts";
import { machine, printTable, record } from "./lib/report.ts";
import { seedDevices, type SeededDevice } from "./lib/seed.ts";
import { openLoop, summarise } from "./lib/stats.ts";
import { startTarget } from "./lib/target.ts";

const BIG = Number(process.env.BENCH_GROUP_SIZE ?? 1500);
const SMALL = 50;
const FANOUTS = Number(process.env.BENCH_FANOUTS ?? 20);
const RATES = (process.env.BENCH_RATES ?? "100,250,500,1000").split(",").map(Number);
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 5000);
const MODES = (process.env.BENCH_MODES ?? "acks,send-only").split(",");

/** `n` real application messages of the creator's group, encrypted in order ahead of time. */
async function encrypt(creator: MlsMember, groupId: string, n: number): Promise<string[]> {
  const cs = await mlsSuite();
  let state = (await creator.mls.state(groupId))!;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { newState, privateMessage } = await createApplicationMessage(state, new Uint8Array(Buffer.from(`bench ${i}`.padEnd(200, "."))), cs);
    state = newState;
    out.push(Buffer.from(encodeMlsMessage({ privateMessage, wireformat: "mls_private_message", version: "mls10" })).toString("base64"));
  }
  return out;
}

/** Writes the seeded devices in as members at epoch 0 (what a commit adding them at epoch 0 would store). */
async function addMembers(dbUrl: string, groupId: string, members: SeededDevice[]) {
  const sql = new pg.Client({ connectionString: dbUrl });
  await sql.connect();
  const ids = members.map((m) => m.userId);
  await sql.query("INSERT INTO group_members (group_id, user_id, role) SELECT $1, unnest($2::uuid[]), 'member'", [groupId, ids]);
  await sql.query(
    `INSERT INTO group_devices (group_id, user_id, device_id, joined_epoch, from_seq, acked_seq)
     SELECT $1, unnest($2::uuid[]), 1, 0, 1, 0`,
    [groupId, ids],
  );
  await sql.end();
}

/**
 * Subscribes every member's inbox; `onGroupEvent(seq)` for each application message that arrives. With `acks`,
 * each socket acknowledges what it receives while `acks.on` is true, and `acks.onAcked(seq)` runs once answered.
 */
async function subscribeAll(
  url: string,
  members: SeededDevice[],
  onGroupEvent: (seq: number) => void,
  acks?: { on: boolean; onAcked(seq: number): void; calls: number; failures: number },
): Promise<GqlSocket[]> {
  const ackQuery = operation(AckEnvelopesDocument);
  // The SDK's group inbox (its Inbox document leaves group events to GroupInbox), by hash as the SDK sends it.
  const inbox = operation(GroupInboxDocument);
  const sockets: GqlSocket[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < members.length) {
        const s = await connectGql(url, members[next++].token, { timeoutMs: 60_000 });
        const queue = acks && new AckQueue((ids) => (acks.calls++, s.request(ackQuery, { ids })), () => acks.failures++);
        s.subscribe(inbox, (p) => {
          const e = (p.data as { inbox?: { __typename: string; id: string; kind?: string; seq?: number } })?.inbox;
          if (e?.__typename !== "GroupEvent" || e.kind !== "APPLICATION") return;
          onGroupEvent(e.seq!);
          if (queue && acks.on) void queue.add(e.id).then((ok) => ok && acks.onAcked(e.seq!));
        });
        sockets.push(s);
      }
    }),
  );
  return sockets;
}

const target = await startTarget({ RATE_LIMITS: "off", PREKEY_LOW_WATER_MARK: "0", KEY_PACKAGE_LOW_WATER_MARK: "0" });
try {
  console.log(`machine: ${JSON.stringify(machine())}`);
  const url = target.node.url;
  const creator = await mlsMember(url, 0);
  const seeded = await seedDevices(url, target.db.url!, BIG - 1 + SMALL - 1);
  const creatorWs = await connectGql(url, creator.token);
  const sendQuery = operation(SendGroupMessageDocument);

  // (1) 1,500 members.
  const bigId = await creator.mls.createGroup({ name: "bench big" });
  await addMembers(target.db.url!, bigId, seeded.slice(0, BIG - 1));
  const arrivals = new Map<number, { n: number; last: number }>();
  const big = await subscribeAll(url, seeded.slice(0, BIG - 1), (seq) => {
    const a = arrivals.get(seq) ?? { n: 0, last: 0 };
    a.n++;
    a.last = performance.now();
    arrivals.set(seq, a);
  });
  await new Promise((r) => setTimeout(r, 2000));
  const bigMessages = await encrypt(creator, bigId, FANOUTS + 1);
  const fromCall: number[] = [];
  const fromAnswer: number[] = [];
  let incomplete = 0;
  for (const [k, message] of bigMessages.entries()) {
    const t0 = performance.now();
    const r = await creatorWs.request<{ sendGroupMessage: { messageId: string } }>(sendQuery, { groupId: bigId, message });
    const t1 = performance.now();
    const seq = Number(r.sendGroupMessage.messageId.split(":").pop());
    const deadline = Date.now() + 30_000;
    while ((arrivals.get(seq)?.n ?? 0) < BIG - 1 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
    const a = arrivals.get(seq);
    if (k === 0) continue; // the first one warms the path
    if (!a || a.n < BIG - 1) incomplete++;
    else {
      fromCall.push(a.last - t0);
      fromAnswer.push(a.last - t1);
    }
  }
  for (const s of big) s.ws.terminate();
  const call = summarise(fromCall);
  const answer = summarise(fromAnswer);

  // (2) 50 members, offered rates.
  const smallId = await creator.mls.createGroup({ name: "bench 50" });
  const smallMembers = seeded.slice(BIG - 1);
  await addMembers(target.db.url!, smallId, smallMembers);
  // Members can have a message before the sender has its answer: arrivals are counted per sequence number and
  // matched with the call time afterwards.
  const callAt = new Map<number, number>();
  const got = new Map<number, { n: number; last: number }>();
  const acked = new Map<number, { n: number; last: number }>();
  const count = (m: Map<number, { n: number; last: number }>, seq: number) => {
    const a = m.get(seq) ?? { n: 0, last: 0 };
    a.n++;
    a.last = performance.now();
    m.set(seq, a);
  };
  const acks = { on: true, onAcked: (seq: number) => count(acked, seq), calls: 0, failures: 0 };
  const small = await subscribeAll(url, smallMembers, (seq) => count(got, seq), acks);
  await new Promise((r) => setTimeout(r, 2000));
  const total = MODES.length * RATES.reduce((n, r) => n + Math.ceil((r * STEP_MS) / 1000), 0);
  console.log(`encrypting ${total} application messages ahead of time…`);
  const smallMessages = await encrypt(creator, smallId, total);
  let m = 0;
  const meter = new CpuMeter(target.node.child.pid!, target.db.url!);
  const steps: Record<string, unknown>[] = [];
  const stepResults: unknown[] = [];
  for (const mode of MODES) for (const rate of RATES) {
    acks.on = mode === "acks";
    callAt.clear();
    got.clear();
    acked.clear();
    acks.calls = acks.failures = 0;
    let errors = 0;
    let accepted = 0;
    const cpuBefore = await meter.read();
    const run = await openLoop(rate, STEP_MS, 90, async () => {
      const message = smallMessages[m++];
      if (!message) return;
      const t = performance.now();
      try {
        const r = await creatorWs.request<{ sendGroupMessage: { messageId: string } }>(sendQuery, { groupId: smallId, message });
        accepted++;
        callAt.set(Number(r.sendGroupMessage.messageId.split(":").pop()), t);
      } catch {
        errors++;
      }
    });
    const all = (m: Map<number, { n: number }>, seq: number) => (m.get(seq)?.n ?? 0) >= SMALL - 1;
    const done = (seq: number) => all(got, seq) && (!acks.on || all(acked, seq));
    const complete = () => [...callAt.keys()].filter(done).length;
    for (let w = 0; w < 100 && complete() < callAt.size; w++) await new Promise((r) => setTimeout(r, 100));
    const cpu = CpuMeter.diff(cpuBefore, await meter.read());
    const perMessage = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, complete()));
    const lat = [...callAt].filter(([seq]) => all(got, seq)).map(([seq, t]) => got.get(seq)!.last - t);
    const ackLat = [...callAt].filter(([seq]) => all(acked, seq)).map(([seq, t]) => acked.get(seq)!.last - t);
    const lastDone = Math.max(0, ...[...callAt.keys()].filter(done).map((seq) => (acks.on ? acked : got).get(seq)!.last));
    const perSecond = Math.round((complete() / Math.max(1, lastDone - run.startedAt)) * 1000);
    const s = summarise(lat);
    const a = summarise(ackLat);
    steps.push({ mode, "offered/s": rate, "accepted/s": Math.round((accepted / run.elapsedMs) * 1000), "done/s": perSecond, "reached all 49": `${lat.length}/${accepted}`, "all 49 acked": acks.on ? `${ackLat.length}/${accepted}` : "", "call → all have it p50": s.p50, p95: s.p95, p99: s.p99, "call → all acked p50": acks.on ? a.p50 : "", "p99 ": acks.on ? a.p99 : "", "ack calls": acks.on ? acks.calls : "", errors: errors + acks.failures, skipped: run.skipped, "server µs/msg": perMessage(cpu.server), "pg µs/msg": perMessage(cpu.postgres), "load µs/msg": perMessage(cpu.load) });
    stepResults.push({ mode, rate, accepted, perSecond, complete: lat.length, acked: ackLat.length, latency: s, ackLatency: a, ackCalls: acks.calls, errors, ackFailures: acks.failures, skipped: run.skipped, elapsedMs: run.elapsedMs, cpuSeconds: cpu });
  }
  await meter.close();
  for (const s of small) s.ws.terminate();
  creatorWs.close();

  const relay = await startRawRelay();
  const rawBig = await rawFanout(relay.url, { members: BIG - 1, messages: FANOUTS, payloadBytes: 300 });
  relay.stop();

  printTable(`bench:group — one application message to ${BIG} members (${BIG - 1} subscribed devices counted), ${FANOUTS} messages one after another (ms)`, [
    { measure: "call → last device has it", p50: call.p50, p95: call.p95, p99: call.p99, max: call.max, "raw ws p50": rawBig.p50, "raw ws p99": rawBig.p99, "p50 / raw": (call.p50 / rawBig.p50).toFixed(1) },
    { measure: "answer → last device has it", p50: answer.p50, p95: answer.p95, p99: answer.p99, max: answer.max, "raw ws p50": "", "raw ws p99": "", "p50 / raw": "" },
  ]);
  if (incomplete) console.log(`${incomplete} messages did not reach every device within 30 s`);
  printTable(`bench:group — application messages into a ${SMALL}-member group, one sender, ${STEP_MS / 1000} s per step (latency ms from the call; "done" = all 49 acknowledged, or all 49 have it when send-only)`, steps);
  record("group", { ...target.mode, bigGroup: BIG, smallGroup: SMALL, stepMs: STEP_MS }, { fanout: { fromCall: call, fromAnswer: answer, incomplete, rawWs: rawBig }, smallGroup: stepResults });
} finally {
  await target.stop();
}
