// The service as a process: configuration errors, health and readiness, schema.graphql freshness, and several nodes
// starting together on one PostgreSQL.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MeDocument } from "../../src/client/generated/graphql.ts";
import { loadConfig } from "../../src/config.ts";
import { printSchemaFile } from "../../src/graphql/print.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { createTestDatabase, sqlClient, usingPostgres } from "../helpers/database.ts";
import { baseEnv, busPrefix, spawnNode, startServer } from "../helpers/server.ts";
import { pgProxy } from "../faults/helpers.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("the service", () => {
  it("schema.graphql is what the Pothos schema prints (run `npm run schema` when this fails)", () => {
    expect(readFileSync(`${root}/schema.graphql`, "utf8")).toBe(printSchemaFile());
  });

  it("rejects a wrong configuration value, naming the variable", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT/);
    expect(() => loadConfig({ DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ MAX_DEVICES_PER_USER: "0" })).toThrow(/MAX_DEVICES_PER_USER/);
    const run = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: { ...process.env, REDIS_URL: "http://nope", LOG_LEVEL: "silent" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).toBe(78);
    expect(run.stderr).toMatch(/REDIS_URL/);
  });

  it("answers /healthz and /readyz", async () => {
    const server = await startServer();
    try {
      const base = server.url.replace(/\/graphql$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready" });
      const big = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ __typename }", pad: "x".repeat(9 * 1024 * 1024) }),
      });
      expect(big.status).toBe(413);
    } finally {
      await server.close();
    }
  });

  it.skipIf(!usingPostgres)("/readyz names no raw error when the database is away: 503 with a generic reason", async () => {
    const db = await createTestDatabase();
    const real = new URL(db.url!);
    const proxy = await pgProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(db.url!);
    viaProxy.port = String(proxy.port);
    const server = await startServer({ DATABASE_URL: viaProxy.toString() }, { db: { ...db, env: { DATABASE_URL: viaProxy.toString() } } });
    try {
      const readyz = server.url.replace(/\/graphql$/, "/readyz");
      expect((await fetch(readyz)).status).toBe(200);
      await proxy.cut();
      const down = await fetch(readyz);
      expect(down.status).toBe(503);
      const body = await down.text();
      expect(JSON.parse(body)).toEqual({ status: "unavailable", reason: "a backing service is unreachable" });
      expect(body).not.toMatch(/ECONN|127\.0\.0\.1|terminated|postgres|vg_test/i);
    } finally {
      await proxy.restore();
      await server.close();
      await proxy.close();
      await db.drop();
    }
  });

  it.skipIf(!usingPostgres)("two nodes started together on one PostgreSQL migrate it once and both serve", async () => {
    const db = await createTestDatabase();
    const env = baseEnv(db, { BUS_PREFIX: busPrefix() });
    const nodes = await Promise.all([spawnNode(env), spawnNode(env)]);
    try {
      const sql = await sqlClient(db.url!);
      const { rows } = await sql.query("SELECT name, count(*)::int AS n FROM vignette_migrations GROUP BY name");
      await sql.end();
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      const applied = nodes.map((n) => n.logs.some((l) => l.includes("migrations applied")));
      expect(applied.filter(Boolean)).toHaveLength(1);
      const alice = await registerDevice(nodes[0].url);
      const onOther = await registerDevice(nodes[1].url);
      expect((await alice.http.request(MeDocument)).me.userId).toBe(alice.userId);
      expect(onOther.userId).not.toBe(alice.userId);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await db.drop();
    }
  });
});

describe("shutdown", () => {
  it("SIGTERM drains and exits 0", async () => {
    const db = await createTestDatabase();
    const node = await spawnNode(baseEnv(db, { BUS_PREFIX: busPrefix() }));
    try {
      const alice = await registerDevice(node.url);
      expect((await alice.http.request(MeDocument)).me.deviceId).toBe(1);
      expect(await node.stop("SIGTERM")).toBe(0);
      expect(node.logs.some((l) => l.includes("http server closed"))).toBe(true);
    } finally {
      await node.stop("SIGKILL");
      await db.drop();
    }
  });
});
