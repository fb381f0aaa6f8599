// Baseline: the envelope rows a send stores, inserted straight into PostgreSQL with `pg`, batched.
import pg from "pg";

export async function rawBatchedInserts(
  url: string,
  opts: { rows: number; batch: number; connections: number; payloadBytes: number },
): Promise<{ rowsPerSecond: number }> {
  const pool = new pg.Pool({ connectionString: url, max: opts.connections });
  await pool.query("CREATE TABLE IF NOT EXISTS bench_raw_rows (id bigserial PRIMARY KEY, user_id uuid, device_id int, body bytea, created_at timestamptz DEFAULT now())");
  const body = Buffer.alloc(opts.payloadBytes, 7);
  const user = "00000000-0000-4000-8000-000000000000";
  let remaining = opts.rows;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (remaining > 0) {
        const n = Math.min(opts.batch, remaining);
        remaining -= n;
        const values: string[] = [];
        const params: unknown[] = [];
        for (let i = 0; i < n; i++) {
          values.push(`($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3})`);
          params.push(user, i, body);
        }
        await pool.query(`INSERT INTO bench_raw_rows (user_id, device_id, body) VALUES ${values.join(",")}`, params);
      }
    }),
  );
  const elapsed = performance.now() - start;
  await pool.query("DROP TABLE bench_raw_rows");
  await pool.end();
  return { rowsPerSecond: Math.round((opts.rows / elapsed) * 1000) };
}
