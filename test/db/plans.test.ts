// The plan PostgreSQL keeps for a hot statement must not depend on how big the tables were when it was made. A named
// statement's generic plan is made once per connection, early (a new database's tables are empty and unanalysed), and
// kept until statistics change; a plan that is right for ten rows and scans everything at ten million is a slow leak.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Database, type MigrationSession } from "../../src/db/database.ts";
import { migrate } from "../../src/db/migrator.ts";
import { APPEND } from "../../src/groups/append-store.ts";
import { READ_FOR_SENDS } from "../../src/messages/store.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/database.ts";

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

type ArrayOf = (element: (j: number) => string, type: string) => string;
const nodesOf = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodesOf)];

describe("plans of the hot statements on a new database", () => {
  let tdb: TestDatabase;
  let db: Database;
  let session: MigrationSession;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = await openDatabase(loadConfig({ ...tdb.env, NODE_ENV: "test" }).database);
    await migrate(db);
    session = await db.migrationSession();
    // The plan a named statement falls back to once its first executions are done.
    await session.exec("SET plan_cache_mode = force_generic_plan");
  });

  afterAll(async () => {
    await session?.release();
    await db?.close();
    await tdb?.drop();
  });

  async function genericPlan(name: string, text: string, types: string[], args: string): Promise<PlanNode[]> {
    await session.exec(`PREPARE ${name}(${types.join(", ")}) AS ${text}`);
    const [row] = await session.query<{ "QUERY PLAN": [{ Plan: PlanNode }] | string }>(
      `EXPLAIN (FORMAT JSON) EXECUTE ${name}(${args})`,
    );
    const plan = row["QUERY PLAN"];
    return nodesOf((typeof plan === "string" ? JSON.parse(plan) : plan)[0].Plan);
  }

  it("a batch of sends looks its stored sends and blocks up by their keys, never by scanning the tables", async () => {
    const u = "ARRAY[gen_random_uuid()]";
    const nodes = await genericPlan(
      "read_for_sends",
      READ_FOR_SENDS,
      ["uuid[]", "uuid[]", "int[]", "text[]", "uuid[]", "uuid[]"],
      `${u}, ${u}, ARRAY[1], ARRAY['c1'], ${u}, ${u}`,
    );
    const on = (table: string) => nodes.filter((n) => n["Relation Name"] === table);
    expect(on("messages").map((n) => n["Node Type"])).not.toContain("Seq Scan");
    expect(on("messages").map((n) => n["Index Name"])).toContain("messages_client_id_key");
    expect(on("consent_blocks").map((n) => n["Node Type"])).not.toContain("Seq Scan");
  });

  /** Custom and generic plans of twelve executions, with batches of one to three elements as at low rates. */
  async function planChoices(name: string, text: string, types: string[], args: (array: ArrayOf) => string) {
    await session.exec("SET plan_cache_mode = auto");
    try {
      await session.exec(`PREPARE ${name}(${types.join(", ")}) AS ${text}`);
      for (let i = 0; i < 12; i++) {
        const n = 1 + (i % 3);
        await session.query(`EXECUTE ${name}(${args((f, type) => `ARRAY[${Array.from({ length: n }, (_, j) => f(j)).join(", ")}]::${type}`)})`);
      }
      const [plans] = await session.query<{ generic_plans: string | number; custom_plans: string | number }>(
        `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = '${name}'`,
      );
      return { custom: Number(plans.custom_plans), generic: Number(plans.generic_plans) };
    } finally {
      await session.exec("SET plan_cache_mode = force_generic_plan");
    }
  }
  const uuid = () => `'${randomUUID()}'`;

  // Custom plans count the arrays' elements and the generic plan cannot: unless the arrays are unsized
  // (src/db/plans.ts), the generic plan looks costlier and the statement is planned again on every call.
  it("a batch of sends is planned once per connection, not on every call: after the first five its plan is kept", async () => {
    const plans = await planChoices(
      "read_for_sends_auto",
      READ_FOR_SENDS,
      ["uuid[]", "uuid[]", "int[]", "text[]", "uuid[]", "uuid[]"],
      (a) => [a(uuid, "uuid[]"), a(uuid, "uuid[]"), a(() => "1", "int[]"), a((j) => `'c${j}'`, "text[]"), a(uuid, "uuid[]"), a(uuid, "uuid[]")].join(", "),
    );
    expect(plans).toEqual({ custom: 5, generic: 7 });
  });

  it("a batch of group sends is planned once per connection too", async () => {
    const plans = await planChoices(
      "group_append_auto",
      APPEND,
      ["timestamptz", "uuid[]", "uuid[]", "int[]", "int[]", "text[]", "text[]"],
      (a) => ["now()", a(uuid, "uuid[]"), a(uuid, "uuid[]"), a(() => "1", "int[]"), a(() => "1", "int[]"), a(() => "'AA=='", "text[]"), a(() => "'AA=='", "text[]")].join(", "),
    );
    expect(plans).toEqual({ custom: 5, generic: 7 });
  });
});
