// Consent changes made on one node reach streams open on another (two server processes sharing PostgreSQL and
// Redis): the ConsentChanged notice crosses the bus. Skipped in embedded mode.
import { afterAll, beforeAll, describe, it } from "vitest";
import { createTestDatabase, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";
import { presenceFollowsConsent, typingFollowsBlocks } from "./live-consent.ts";

describe.skipIf(!usingPostgres || !usingRedis)("consent across two nodes", () => {
  let db: TestDatabase;
  let nodeA: NodeProcess;
  let nodeB: NodeProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = baseEnv(db, { BUS_PREFIX: busPrefix(), PRESENCE_TTL_MS: "3000" });
    [nodeA, nodeB] = await Promise.all([spawnNode(env), spawnNode(env)]);
  });
  afterAll(async () => {
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await db?.drop();
  });

  it("a block or NOBODY on node A stops the blocker's presence on a stream open on node B; an unblock sends it", async () => {
    await presenceFollowsConsent(nodeA, nodeB);
  });

  it("a block on node A stops the blocker's typing on a stream open on node B", async () => {
    await typingFollowsBlocks(nodeA, nodeB);
  });
});
