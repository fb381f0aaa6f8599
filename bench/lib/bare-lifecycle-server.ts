// Baseline server for bench:send: the 1:1 lifecycle with nothing of ours but its SQL. It speaks the same wire
// protocol as the real server for the four operations the lifecycle takes (graphql-transport-ws frames, the SDK's
// persisted-operation hashes, the same payload shapes), so the same load drives both; it runs the server's own
// statements (the send batch's read and write, the acknowledgement with its receipts) through the same group commit
// (src/live/batcher.ts) on a bare `pg` pool, and carries live events over Redis as the server does. There is no
// GraphQL execution, no Prisma, no validation, no limits, no metrics and no logging: what it reaches is what this
// machine gives this design before any of the service's own cost. Run as its own process; prints its port.
// Environment: DATABASE_URL, REDIS_URL ("memory" for in-process events), BARE_DEVICES (a JSON file: token -> user id).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import pg from "pg";
import { WebSocketServer, type WebSocket } from "ws";
import { AckEnvelopesDocument, InboxDocument, SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { operationPayload } from "../../src/client/transport.ts";
import { plainArray } from "../../src/db/arrays.ts";
import { ackStatement, envelopeWrite, receiptWrite } from "../../src/inbox/store.ts";
import { Batcher, type Settled } from "../../src/live/batcher.ts";
import { deliveredOnAck, READ_FOR_SENDS, writeSendsStatement } from "../../src/messages/store.ts";

const WRITE_SENDS = writeSendsStatement(envelopeWrite as Parameters<typeof writeSendsStatement>[0]);
const ACK_ITEMS = ackStatement(deliveredOnAck(receiptWrite));
const RETENTION_MS = 30 * 86_400_000;
const hashOf = (doc: Parameters<typeof operationPayload>[0]) =>
  (operationPayload(doc, {}, true) as { extensions: { persistedQuery: { sha256Hash: string } } }).extensions.persistedQuery.sha256Hash;
const SEND = hashOf(SendMessageDocument);
const ACK = hashOf(AckEnvelopesDocument);
const INBOX = hashOf(InboxDocument);

const devices = new Map<string, string>(Object.entries(JSON.parse(readFileSync(process.env.BARE_DEVICES!, "utf8"))));
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
const query = async <R>(name: string, text: string, values: unknown[]) => (await pool.query<R & pg.QueryResultRow>({ name, text, values })).rows;

// Live events: a channel per device, as the server's bus has; the inbox subscription of that device gets them.
const inboxes = new Map<string, { ws: WebSocket; id: string }>();
const channelOf = (userId: string) => `bare:${process.pid}:inbox:${userId}:1`;
const deliver = (userId: string, event: unknown) => {
  const sub = inboxes.get(userId);
  sub?.ws.send(`{"id":${JSON.stringify(sub.id)},"type":"next","payload":{"data":{"inbox":${JSON.stringify(event)}}}}`);
};
const redisUrl = process.env.REDIS_URL ?? "memory";
const publisher = redisUrl === "memory" ? null : new Redis(redisUrl, { enableAutoPipelining: true });
const subscriber = redisUrl === "memory" ? null : new Redis(redisUrl);
subscriber?.on("message", (channel: string, message: string) => deliver(channel.split(":")[3], JSON.parse(message)));
const publish = (userId: string, event: unknown) =>
  publisher ? void publisher.publish(channelOf(userId), JSON.stringify(event)) : deliver(userId, event);

interface Send {
  sender: string;
  recipient: string;
  clientMessageId: string;
  messageType: string;
  body: string;
  type: number;
}

async function sendBatch(sends: Send[]): Promise<Settled<{ messageId: string; serverTimestamp: string }>[]> {
  const now = new Date();
  const read = await query<{ row_kind: string; user_id: string }>("bare-read", READ_FOR_SENDS, [
    plainArray([...new Set(sends.flatMap((s) => [s.sender, s.recipient]))]),
    plainArray(sends.map((s) => s.sender)),
    plainArray(sends.map(() => 1)),
    sends.map((s) => s.clientMessageId),
    plainArray(sends.map((s) => s.sender)),
    plainArray(sends.map((s) => s.recipient)),
  ]);
  const active = new Set(read.filter((r) => r.row_kind === "device").map((r) => r.user_id));
  const ok = sends.filter((s) => active.has(s.recipient));
  const ab = ok.map((s) => (s.sender < s.recipient ? [s.sender, s.recipient] : [s.recipient, s.sender]));
  const pairs = [...new Map(ab.map((x) => [x.join("|"), x])).values()].sort((x, y) => (x.join() < y.join() ? -1 : 1));
  const ids: string[] = ok.map(() => randomUUID());
  const expires = new Date(now.getTime() + RETENTION_MS).toISOString();
  const written = await query<{ row_kind: string; id: string; message_id: string; conversation_id: string; user_id: string }>(
    "bare-send",
    WRITE_SENDS,
    [
      now.toISOString(), plainArray(pairs.map(() => randomUUID())), plainArray(pairs.map((x) => x[0])), plainArray(pairs.map((x) => x[1])),
      plainArray(ids), plainArray(ab.map((x) => x[0])), plainArray(ab.map((x) => x[1])), plainArray(ok.map((s) => s.sender)),
      plainArray(ok.map(() => 1)), plainArray(ok.map((s) => s.recipient)), ok.map((s) => s.clientMessageId),
      ok.map((s) => s.messageType), ok.map(() => null), ok.map(() => null),
      plainArray(ok.map((s) => s.recipient)), plainArray(ok.map(() => 1)), plainArray(ids), plainArray(ok.map((s) => s.type)),
      ok.map((s) => s.body), ok.map(() => null), ok.map(() => expires),
    ],
  );
  const at = now.toISOString();
  const byMessage = new Map(ok.map((s, i) => [ids[i], s]));
  for (const r of written) {
    if (r.row_kind !== "item") continue;
    const s = byMessage.get(r.message_id)!;
    publish(r.user_id, {
      __typename: "EnvelopeEvent",
      id: r.id,
      envelope: { id: r.id, messageId: r.message_id, conversationId: r.conversation_id, senderUserId: s.sender, senderDeviceId: 1, type: s.type, body: s.body, serverTimestamp: at, expiresAt: expires },
    });
  }
  const stored = new Set(written.filter((r) => r.row_kind === "message").map((r) => r.id));
  const answer = new Map(ok.map((s, i) => [s, ids[i]]));
  return sends.map((s) => {
    const messageId = answer.get(s);
    return messageId && stored.has(messageId)
      ? { ok: true, value: { messageId, serverTimestamp: at } }
      : { ok: false, error: new Error("not stored") };
  });
}

async function ackBatch(reqs: { userId: string; ids: string[] }[]): Promise<Settled<number>[]> {
  const now = new Date();
  const items = reqs.flatMap((r) => r.ids.map((id) => ({ u: r.userId, id })));
  const rows = await query<{ row_kind: string; id: string; user_id: string; message_id: string; conversation_id: string; payload: Record<string, unknown> }>(
    "bare-ack",
    ACK_ITEMS,
    [now, now.toISOString(), new Date(now.getTime() + RETENTION_MS), plainArray(items.map((i) => i.u)), plainArray(items.map(() => 1)), plainArray(items.map((i) => i.id))],
  );
  const removed = new Set<string>();
  for (const r of rows) {
    if (r.row_kind === "removed") removed.add(`${r.user_id}|${r.id}`);
    else publish(r.user_id, { __typename: "ReceiptEvent", id: r.id, messageId: r.message_id, conversationId: r.conversation_id, ...r.payload });
  }
  return reqs.map((r) => ({ ok: true, value: r.ids.filter((id) => removed.has(`${r.userId}|${id}`)).length }));
}

const sends = new Batcher(sendBatch, { maxBatch: 128, maxConcurrent: 10 });
const acks = new Batcher(ackBatch, { maxBatch: 128, maxConcurrent: 5 });

// The answer to a query or mutation: its `next` and its `complete` in one write, as the server writes them.
function answer(ws: WebSocket, id: string, payload: string) {
  const socket = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  socket.cork();
  ws.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${payload}}`);
  ws.send(`{"id":${JSON.stringify(id)},"type":"complete"}`);
  process.nextTick(() => socket.uncork());
}
const fail = (ws: WebSocket, id: string, err: unknown) =>
  answer(ws, id, JSON.stringify({ errors: [{ message: (err as Error).message, extensions: { code: "INTERNAL" } }] }));

const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", path: "/graphql", perMessageDeflate: false });
wss.on("connection", (ws) => {
  let userId: string | undefined;
  ws.on("message", (raw) => {
    const m = JSON.parse(raw.toString());
    if (m.type === "connection_init") {
      userId = devices.get(String(m.payload?.authorization ?? "").replace(/^Bearer /, ""));
      if (!userId) return ws.close(4403, "Forbidden");
      return ws.send('{"type":"connection_ack"}');
    }
    if (m.type === "pong" || m.type === "ping" || !userId) return;
    if (m.type !== "subscribe") return;
    const user = userId;
    const hash = m.payload?.extensions?.persistedQuery?.sha256Hash;
    const vars = m.payload?.variables ?? {};
    if (hash === INBOX) {
      inboxes.set(user, { ws, id: m.id });
      void subscriber?.subscribe(channelOf(user));
    } else if (hash === SEND) {
      const input = vars.input;
      const env = input.envelopes[0];
      sends
        .submit({ sender: user, recipient: input.recipientUserId, clientMessageId: input.clientMessageId, messageType: input.messageType, body: env.body, type: env.type })
        .then((r) => answer(ws, m.id, `{"data":{"sendMessage":${JSON.stringify(r)}}}`), (err) => fail(ws, m.id, err));
    } else if (hash === ACK) {
      acks.submit({ userId: user, ids: vars.ids }).then((n) => answer(ws, m.id, `{"data":{"ackEnvelopes":${n}}}`), (err) => fail(ws, m.id, err));
    } else {
      fail(ws, m.id, new Error("not an operation of the lifecycle"));
    }
  });
  ws.on("close", () => {
    if (userId && inboxes.get(userId)?.ws === ws) {
      inboxes.delete(userId);
      void subscriber?.unsubscribe(channelOf(userId));
    }
  });
});
// A stop by signal exits normally, so that a CPU profile (BENCH_PROFILE=1) is written.
process.on("SIGTERM", () => process.exit(0));
wss.on("listening", () => {
  const a = wss.address();
  console.log(JSON.stringify({ port: typeof a === "object" && a ? a.port : 0 }));
});
