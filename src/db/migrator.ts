// Applies prisma/migrations/*/migration.sql in name order, each once, recorded in vignette_migrations. Several nodes
// may start together on one PostgreSQL: a session-level advisory lock makes the others wait, then find nothing to do.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Database } from "./database.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));
// Any fixed 64-bit number; it only has to be the same on every node.
const LOCK_KEY = 7_348_112_909;

export interface MigrationResult {
  applied: string[];
}

export function listMigrations(dir = MIGRATIONS_DIR): { name: string; sql: string }[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => ({ name, sql: readFileSync(join(dir, name, "migration.sql"), "utf8") }));
}

export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const session = await db.migrationSession();
  const applied: string[] = [];
  try {
    await session.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
    try {
      await session.exec(
        `CREATE TABLE IF NOT EXISTS vignette_migrations (
           name text PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = new Set(
        (await session.query<{ name: string }>("SELECT name FROM vignette_migrations")).map((r) => r.name),
      );
      for (const m of listMigrations(dir)) {
        if (done.has(m.name)) continue;
        const name = m.name.replace(/'/g, "''");
        try {
          await session.exec(`BEGIN;\n${m.sql}\n;INSERT INTO vignette_migrations(name) VALUES ('${name}');\nCOMMIT;`);
        } catch (err) {
          await session.exec("ROLLBACK").catch(() => {});
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
        applied.push(m.name);
      }
    } finally {
      await session.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]);
    }
  } finally {
    await session.release();
  }
  return { applied };
}
