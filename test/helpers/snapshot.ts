// Row counts and checksums of every table, read over SQL, to prove that a refused operation changed nothing.
import type { PrismaClient } from "../../src/db/database.ts";
import { sqlClient } from "./database.ts";
import type { TestServer } from "./server.ts";

export type Snapshot = Record<string, { rows: number; sum: string }>;
type Query = (sql: string) => Promise<Record<string, unknown>[]>;

async function snapshotWith(query: Query): Promise<Snapshot> {
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
}

/** Through the server's own Prisma client: works in both storage modes. */
export function snapshotTables(prisma: PrismaClient): Promise<Snapshot> {
  return snapshotWith((sql) => prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql));
}

/**
 * With PostgreSQL this is a connection of its own to the test database; an embedded PGlite lives inside the server
 * process and has no other door than the server's own client, so raw SQL goes through that.
 */
export async function openSnapshotter(server: TestServer): Promise<{ take(): Promise<Snapshot>; close(): Promise<void> }> {
  if (!server.db.url) {
    return { take: () => snapshotTables(server.app.prisma), close: async () => {} };
  }
  const c = await sqlClient(server.db.url);
  return { take: () => snapshotWith(async (sql) => (await c.query(sql)).rows), close: () => c.end() };
}
