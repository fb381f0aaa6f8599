// The database floor of bench:send: the SQL of one message's whole life alone, on a bare `pg` pool, batched as
// the server batches it: the send's write (the server's own statement), the recipient's acknowledgement (delete
// the queue row, mark the message delivered, queue one receipt per sender device) and the sender's acknowledgement
// of that receipt (the server's acknowledgement statement, twice). Each connection runs its batches through all
// three statements in turn. `receipts: "state"` is a design the server does not have, measured for what it would
// save: the acknowledgement marks the messages delivered and queues nothing, so there is no receipt to acknowledge
// (a sender would read delivery from the messages' state, and get it live from the bus).
import { randomUUID } from "node:crypto";
import pg from "pg";
import { ackStatement, envelopeWrite, receiptWrite } from "../../src/inbox/store.ts";
import { deliveredOnAck, writeSendsStatement } from "../../src/messages/store.ts";

const WRITE_SENDS = writeSendsStatement(envelopeWrite as Parameters<typeof writeSendsStatement>[0]);
const ACK_ITEMS = ackStatement(deliveredOnAck(receiptWrite));
const ACK_ITEMS_NO_RECEIPTS = ackStatement(
  deliveredOnAck({
    ...receiptWrite,
    cte: () => "queued AS (SELECT * FROM inbox_items WHERE $2::text IS NULL AND $3::timestamptz IS NULL AND false)",
  }),
);

export interface Pair {
  sender: string;
  recipient: string;
}

export async function rawLifecycle(
  url: string,
  opts: { pairs: Pair[]; messages: number; batch: number; connections: number; payloadBytes: number; receipts?: "queued" | "state" },
): Promise<{ messagesPerSecond: number; statements: number }> {
  const pool = new pg.Pool({ connectionString: url, max: opts.connections });
  const body = Buffer.alloc(opts.payloadBytes, 7).toString("base64");
  const retention = () => new Date(Date.now() + 30 * 86_400_000).toISOString();
  let remaining = opts.messages;
  let next = 0;
  let statements = 0;
  const run = async (c: pg.PoolClient, name: string, text: string, values: unknown[]) => {
    statements++;
    return (await c.query({ name, text, values })).rows;
  };
  const queued = opts.receipts !== "state";
  const ack = (c: pg.PoolClient, rows: { u: string; d: number; id: string }[]) => {
    const now = new Date().toISOString();
    return run(c, queued ? "ack" : "ack-no-receipts", queued ? ACK_ITEMS : ACK_ITEMS_NO_RECEIPTS, [now, now, retention(), rows.map((r) => r.u), rows.map((r) => r.d), rows.map((r) => r.id)]);
  };
  const start = performance.now();
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      const c = await pool.connect();
      try {
        while (remaining > 0) {
          const n = Math.min(opts.batch, remaining);
          remaining -= n;
          const sends = Array.from({ length: n }, () => opts.pairs[next++ % opts.pairs.length]);
          const ab = sends.map((p) => (p.sender < p.recipient ? [p.sender, p.recipient] : [p.recipient, p.sender]));
          const uniq = [...new Map(ab.map((x) => [x.join("|"), x])).values()].sort((x, y) => (x.join() < y.join() ? -1 : 1));
          const ids = sends.map(() => randomUUID());
          const exp = retention();
          const now = new Date().toISOString();
          const written = await run(c, "send", WRITE_SENDS, [
            now, uniq.map(() => randomUUID()), uniq.map((x) => x[0]), uniq.map((x) => x[1]),
            ids, ab.map((x) => x[0]), ab.map((x) => x[1]), sends.map((p) => p.sender), sends.map(() => 1),
            sends.map((p) => p.recipient), ids, sends.map(() => "TEXT"), sends.map(() => null), sends.map(() => null),
            sends.map((p) => p.recipient), sends.map(() => 1), ids, sends.map(() => 1), sends.map(() => body),
            sends.map(() => null), sends.map(() => exp),
          ]);
          const rowsOf = (rows: { row_kind: string; user_id: string; device_id: number; id: string }[], kind: string) =>
            rows.filter((r) => r.row_kind === kind).map((r) => ({ u: r.user_id, d: r.device_id, id: r.id }));
          const items = rowsOf(written, "item");
          const receipts = rowsOf(await ack(c, items), "queued");
          if (queued) await ack(c, receipts);
        }
      } finally {
        c.release();
      }
    }),
  );
  const elapsed = performance.now() - start;
  await pool.end();
  return { messagesPerSecond: Math.round((opts.messages / elapsed) * 1000), statements };
}
