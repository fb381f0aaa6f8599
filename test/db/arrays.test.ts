// plainArray: the hot statements' array parameters as literals built in one join. A literal PostgreSQL reads
// differently from what was meant would store wrong data silently, so the round trip is checked on the database.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { plainArray } from "../../src/db/arrays.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/database.ts";

describe("plainArray", () => {
  it("joins elements into a literal, null as NULL", () => {
    expect(plainArray([])).toBe("{}");
    expect(plainArray(["a", 2, 3n, null])).toBe("{a,2,3,NULL}");
  });

  it.each(["", "a,b", "a b", "{", "}", '"', "a\\b", "tab\there", "null", "NULL", " x"])("refuses %j, which needs quoting", (v) => {
    expect(() => plainArray(["ok", v])).toThrow(/needs quoting/);
  });

  describe("on the database", () => {
    let tdb: TestDatabase;
    let db: Database;

    beforeAll(async () => {
      tdb = await createTestDatabase();
      db = await openDatabase(loadConfig({ ...tdb.env, NODE_ENV: "test" }).database);
    });

    afterAll(async () => {
      await db?.close();
      await tdb?.drop();
    });

    it("reads back what was meant for every element type the hot statements use", async () => {
      const uuids = [randomUUID(), randomUUID()];
      const times = [new Date("2026-12-03T05:00:00.123Z"), new Date("1999-01-01T00:00:00.000Z")];
      const body = Buffer.from([0, 255, 43, 47, 61]).toString("base64");
      const [row] = await db.sql<{ u: string[]; i: number[]; t: Date[]; b: boolean[]; x: string[]; bytes: Buffer }>(
        `SELECT $1::uuid[] AS u, $2::int[] AS i, $3::timestamptz[] AS t, $4::bool[] AS b, $5::text[] AS x,
                decode(($5::text[])[1], 'base64') AS bytes`,
        [
          plainArray(uuids),
          plainArray([1, -7, null]),
          plainArray(times.map((t) => t.toISOString())),
          plainArray(["t", "f"]),
          plainArray([body, "ab12ef", null]),
        ],
      );
      expect(row!.u).toEqual(uuids);
      expect(row!.i).toEqual([1, -7, null]);
      expect(row!.t.map((t) => new Date(t).toISOString())).toEqual(times.map((t) => t.toISOString()));
      expect(row!.b).toEqual([true, false]);
      expect(row!.x).toEqual([body, "ab12ef", null]);
      expect([...row!.bytes]).toEqual([0, 255, 43, 47, 61]);
    });
  });
});
