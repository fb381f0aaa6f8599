// Opens the one database the process uses: PostgreSQL through @prisma/adapter-pg when DATABASE_URL is set, else an
// embedded PGlite under DATA_DIR. Both are driven by the same generated Prisma client and the same SQL migrations.
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Config } from "../config.ts";
import { PrismaClient } from "../generated/prisma/client.ts";

export type { PrismaClient };

/** A raw session for the migrator: one connection, so an advisory lock holds for everything it runs. */
export interface MigrationSession {
  exec(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  release(): Promise<void>;
}

/**
 * One SQL statement with $1… parameters, straight to the driver: the hot paths' way to the database (Prisma's query
 * engine cost ~10% of the server's busy time on the send path). A statement is atomic on its own; there is no
 * transaction API here on purpose. Rows come as the driver parses them, so statements cast what they return to
 * text, integer or float8 (pg answers int8 as a string, PGlite as a number).
 */
export type Sql = <T>(text: string, params: unknown[]) => Promise<T[]>;

/** The PostgreSQL pool's connections right now (PGlite has none): waiting > 0 means requests queue for one. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface Database {
  kind: "postgres" | "pglite";
  prisma: PrismaClient;
  sql: Sql;
  poolStats(): PoolStats | null;
  migrationSession(): Promise<MigrationSession>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// Prisma's interactive transactions default to 2 s to start and 5 s to finish: a loaded two-core node (or a commit
// adding 1,499 members) outlives that, and the request then fails although nothing was wrong with it.
const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 30_000 };

export async function openDatabase(config: Config["database"]): Promise<Database> {
  return config.kind === "postgres" ? openPostgres(config) : openPglite(config.dataDir);
}

async function openPostgres({ url, poolSize, poolMin, timeouts }: Extract<Config["database"], { kind: "postgres" }>): Promise<Database> {
  // One pool for Prisma and for the hot statements, so the pool size stays the one limit on connections. A server
  // that stops answering (packets dropped: no reset, no refusal) would hold every request forever: opening a
  // connection or waiting for a free one gives up after connectMs, a reply after queryMs, and the server itself
  // cancels a statement after statementMs (set below queryMs, so a slow but reachable server answers first).
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    min: poolMin,
    connectionTimeoutMillis: timeouts.connectMs,
    query_timeout: timeouts.queryMs,
    statement_timeout: timeouts.statementMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle connection that drops (a database restart) is replaced by the pool; without a listener it would crash
  // the process. Queries on a broken connection report their own errors.
  pool.on("error", () => {});
  // Opened now rather than by the first requests: a connection takes milliseconds to open (authentication, backend
  // start), which a node's first burst of requests would otherwise wait out (the pre-key claims' first second).
  // The pool keeps `min` of them while idle.
  const warm = await Promise.allSettled(Array.from({ length: poolMin }, () => pool.connect()));
  for (const w of warm) if (w.status === "fulfilled") w.value.release();
  const failed = warm.find((w) => w.status === "rejected");
  if (failed) {
    await pool.end();
    throw failed.reason;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool), transactionOptions: TRANSACTION_OPTIONS });
  // Named statements are parsed and planned once per connection.
  const names = new Map<string, string>();
  const nameOf = (text: string) => names.get(text) ?? (names.set(text, `vg_${names.size}`), names.get(text)!);
  return {
    kind: "postgres",
    prisma,
    sql: async <T>(text: string, params: unknown[]) =>
      (await pool.query({ name: nameOf(text), text, values: params })).rows as T[],
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async migrationSession() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return {
        exec: async (sql) => void (await client.query(sql)),
        query: async <T>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as T[],
        release: () => client.end(),
      };
    },
    ping: async () => void (await prisma.$queryRaw`SELECT 1`),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  if (!dataDir.startsWith("memory://")) mkdirSync(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(lite), transactionOptions: TRANSACTION_OPTIONS });
  return {
    kind: "pglite",
    prisma,
    // PGlite runs a query only between transactions (it queues behind Prisma's), so a statement never lands in one.
    sql: async <T>(text: string, params: unknown[]) => (await lite.query<T>(text, params)).rows,
    poolStats: () => null,
    async migrationSession() {
      // PGlite is one connection inside this process: there is nobody to race, and nothing to release.
      return {
        exec: async (sql) => void (await lite.exec(sql)),
        query: async <T>(sql: string, params: unknown[] = []) => (await lite.query<T>(sql, params)).rows,
        release: async () => {},
      };
    },
    ping: async () => void (await lite.query("SELECT 1")),
    async close() {
      await prisma.$disconnect();
      await lite.close();
    },
  };
}
