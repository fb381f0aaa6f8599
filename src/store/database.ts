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

export interface Database {
  kind: "postgres" | "pglite";
  prisma: PrismaClient;
  migrationSession(): Promise<MigrationSession>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// Prisma's interactive transactions default to 2 s to start and 5 s to finish: a loaded two-core node (or a commit
// adding 1,499 members) outlives that, and the request then fails although nothing was wrong with it.
const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 30_000 };

export async function openDatabase(config: Config["database"]): Promise<Database> {
  return config.kind === "postgres" ? openPostgres(config.url, config.poolSize) : openPglite(config.dataDir);
}

function openPostgres(url: string, poolSize: number): Database {
  const prisma = new PrismaClient({
    adapter: new PrismaPg({ connectionString: url, max: poolSize }),
    transactionOptions: TRANSACTION_OPTIONS,
  });
  return {
    kind: "postgres",
    prisma,
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
    close: () => prisma.$disconnect(),
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  if (!dataDir.startsWith("memory://")) mkdirSync(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(lite), transactionOptions: TRANSACTION_OPTIONS });
  return {
    kind: "pglite",
    prisma,
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
