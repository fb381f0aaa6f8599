// Each test file gets a database of its own: a fresh PostgreSQL database when DATABASE_URL is set (CI), else an
// in-memory PGlite. Nothing is mocked.
import { randomBytes } from "node:crypto";
import pg from "pg";

export const usingPostgres = !!process.env.DATABASE_URL;
export const usingRedis = !!process.env.REDIS_URL;

export interface TestDatabase {
  /** Environment for the server: DATABASE_URL or DATA_DIR. */
  env: Record<string, string>;
  url: string | null;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base) return { env: { DATA_DIR: "memory://" }, url: null, drop: async () => {} };
  const name = `vg_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(base, name);
  return {
    env: { DATABASE_URL: url },
    url,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A direct connection for assertions about what is (and is not) stored. */
export async function sqlClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}
