// Searches every text, bytea and json column of every table for secrets: as raw bytes, UTF-8, base64 and hex. Uses
// a direct SQL connection against PostgreSQL, and the app's own Prisma client in embedded (PGlite) mode.
import { sqlClient } from "./database.ts";
import type { TestServer } from "./server.ts";

type Query = (sql: string) => Promise<Record<string, unknown>[]>;

export interface ScanResult {
  found: string[];
  tables: string[];
  columnsScanned: number;
}

async function withQuery<T>(server: TestServer, fn: (q: Query) => Promise<T>): Promise<T> {
  if (server.db.url) {
    const c = await sqlClient(server.db.url);
    try {
      return await fn(async (sql) => (await c.query(sql)).rows);
    } finally {
      await c.end();
    }
  }
  return fn((sql) => server.app.prisma.$queryRawUnsafe(sql));
}

export async function scanDatabase(server: TestServer, secrets: { label: string; bytes: Uint8Array }[]): Promise<ScanResult> {
  return withQuery(server, async (q) => {
    const columns = (await q(`
      SELECT table_name AS t, column_name AS c, data_type AS d FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb', 'ARRAY')
      ORDER BY table_name, column_name`)) as { t: string; c: string; d: string }[];
    const tables = [...new Set(((await q(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public'`)) as { t: string }[]).map((r) => r.t))];
    const needles = secrets.map((s) => {
      const buf = Buffer.from(s.bytes);
      return { label: s.label, buf, strings: [buf.toString("base64"), buf.toString("base64url"), buf.toString("hex"), buf.toString("utf8")] };
    });
    const found: string[] = [];
    for (const { t, c, d } of columns) {
      const expr = d === "bytea" ? `"${c}"` : `"${c}"::text`;
      for (const row of await q(`SELECT ${expr} AS v FROM "${t}" WHERE "${c}" IS NOT NULL`)) {
        const v = row.v;
        const asBuf = v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v), "utf8");
        const asText = typeof v === "string" ? v : null;
        for (const n of needles) {
          if (asBuf.indexOf(n.buf) >= 0 || (asText && n.strings.some((s) => s.length >= 8 && asText.includes(s)))) {
            found.push(`${n.label} in ${t}.${c}`);
          }
        }
      }
    }
    return { found: [...new Set(found)], tables, columnsScanned: columns.length };
  });
}
