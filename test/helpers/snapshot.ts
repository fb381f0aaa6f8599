// Row counts and a content hash of every table, to prove a refused request changed nothing.
import type { PrismaClient } from "../../src/store/database.ts";

export type Snapshot = Record<string, { rows: number; hash: string }>;

export async function snapshotTables(prisma: PrismaClient): Promise<Snapshot> {
  const tables = await prisma.$queryRawUnsafe<{ table_name: string }[]>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
  );
  const out: Snapshot = {};
  for (const { table_name } of tables) {
    const [r] = await prisma.$queryRawUnsafe<{ rows: number; hash: string }[]>(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS hash FROM "${table_name}" t`,
    );
    out[table_name] = r;
  }
  return out;
}
