// DATABASE_POOL_MIN: the connections a node opens before it serves, so that its first requests do not wait for
// connections to open (a pre-key claim's first second), and that the pool keeps while idle.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { createTestDatabase, usingPostgres, type TestDatabase } from "../helpers/database.ts";

describe("DATABASE_POOL_MIN", () => {
  it("is bounded by the pool size, and 0 unless set", () => {
    const url = "postgres://u@h/db";
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_POOL_SIZE: "4", DATABASE_POOL_MIN: "5" })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_POOL_MIN: "-1" })).toThrow(/DATABASE_POOL_MIN/);
    const database = loadConfig({ DATABASE_URL: url }).database;
    expect(database.kind === "postgres" && database.poolMin).toBe(0);
  });

  describe.skipIf(!usingPostgres)("on PostgreSQL", () => {
    let tdb: TestDatabase;
    let admin: pg.Client;
    const opened: Database[] = [];

    beforeAll(async () => {
      tdb = await createTestDatabase();
      admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
    });

    afterAll(async () => {
      for (const db of opened) await db.close();
      await admin?.end();
      await tdb?.drop();
    });

    const backends = async () =>
      (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [
        new URL(tdb.url!).pathname.slice(1),
      ])).rows[0].n;

    it("opens its connections before the first request and holds them idle; 0 opens none", async () => {
      const cold = await openDatabase(loadConfig({ ...tdb.env, DATABASE_POOL_SIZE: "6", NODE_ENV: "test" }).database);
      opened.push(cold);
      expect(cold.poolStats()).toEqual({ total: 0, idle: 0, waiting: 0 });
      expect(await backends()).toBe(0);

      const warm = await openDatabase(
        loadConfig({ ...tdb.env, DATABASE_POOL_SIZE: "6", DATABASE_POOL_MIN: "3", NODE_ENV: "test" }).database,
      );
      opened.push(warm);
      expect(warm.poolStats()).toEqual({ total: 3, idle: 3, waiting: 0 });
      expect(await backends()).toBe(3);
      // Serving from the warm connections opens no new one.
      await Promise.all([warm.ping(), warm.ping(), warm.ping()]);
      expect(warm.poolStats()!.total).toBe(3);
    });

    it("fails to open when the database refuses the connections", async () => {
      const url = new URL(tdb.url!);
      url.pathname = "/vg_no_such_database";
      await expect(
        openDatabase(loadConfig({ DATABASE_URL: url.toString(), DATABASE_POOL_MIN: "2", NODE_ENV: "test" }).database),
      ).rejects.toThrow(/vg_no_such_database/);
    });
  });
});
