// The system under test: a real server process on a fresh PostgreSQL database with Redis, as CI runs it.
import { createTestDatabase, type TestDatabase } from "../../test/helpers/database.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../../test/helpers/server.ts";

export interface Target {
  node: NodeProcess;
  db: TestDatabase;
  mode: { database: string; bus: string; nodes: number };
  stop(): Promise<void>;
}

export async function startTarget(extraEnv: Record<string, string> = {}): Promise<Target> {
  process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
  process.env.REDIS_URL ??= "redis://127.0.0.1:6379";
  const db = await createTestDatabase();
  const node = await spawnNode(
    baseEnv(db, { BUS_PREFIX: busPrefix(), LOG_LEVEL: "warn", DATABASE_POOL_SIZE: "20", ...extraEnv }),
  );
  return {
    node,
    db,
    mode: { database: "postgresql", bus: "redis", nodes: 1 },
    async stop() {
      await node.stop();
      await db.drop();
    },
  };
}
