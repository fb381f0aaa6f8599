// Row counts and checksums of every table, read over SQL, to prove that a refused operation changed nothing.
import type { TestServer } from "./server.ts";
import { sqlClient } from "./database.ts";

export type Snapshot = Record<string, { rows: number; sum: string }>;

/**
 * With PostgreSQL this is a connection of its own to the test database; an embedded PGlite lives inside the server
 * process and has no other door than the server's own client, so raw SQL goes through that.
 */
export async function openSnapshotter(server: TestServer): Promise<{ take(): Promise<Snapshot>; close(): Promise<void> }> {
  let query: (sql: string) => Promise<Record<string, unknown>[]>;
  let close = async () => {};
  if (server.db.url) {
    const c = await sqlClient(server.db.url);
    query = async (sql) => (await c.query(sql)).rows;
    close = () => c.end();
  } else {
    const prisma = server.app.services.deps.prisma;
    query = (sql) => prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql);
  }
  return {
    async take() {
      const tables = (await query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)).map(
        (r) => String(r.tablename),
      );
      const out: Snapshot = {};
      for (const t of tables) {
        const [r] = await query(
          `SELECT count(*)::int AS rows, coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS sum FROM "${t}" x`,
        );
        out[t] = { rows: Number(r.rows), sum: String(r.sum) };
      }
      return out;
    },
    close,
  };
}
