// compose.yaml cannot be started here (no Docker engine): it is parsed, and what it gives the nodes is checked against
// the configuration the service actually reads.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, loadConfig } from "../../src/config.ts";

interface Service {
  image?: string;
  command?: string[];
  build?: unknown;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
const compose = parse(readFileSync(new URL("../../compose.yaml", import.meta.url), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = Object.entries(compose.services);
const nodes = services.filter(([, s]) => s.build !== undefined);

/** Compose's `${NAME:-default}` with the defaults, as `docker compose` would resolve them with no .env file. */
const interpolate = (value: string) => String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");

describe("compose.yaml", () => {
  it("runs two Vignette nodes behind one published port, on PostgreSQL and Redis, each with a health check", () => {
    expect(nodes.length).toBeGreaterThanOrEqual(2);
    const published = services.filter(([, s]) => s.ports?.length);
    expect(published.map(([name]) => name)).toEqual(["gateway"]);
    for (const [, s] of services) expect(s.healthcheck?.test.length ?? 0).toBeGreaterThan(0);
    for (const [, node] of nodes) {
      expect(node.depends_on?.postgres?.condition).toBe("service_healthy");
      expect(node.depends_on?.redis?.condition).toBe("service_healthy");
    }
    expect(Object.keys(compose.volumes ?? {})).toContain("pgdata");
  });

  it("gives the nodes only variables the service reads, with values it accepts", () => {
    for (const [name, node] of nodes) {
      const env = node.environment ?? {};
      const unknown = Object.keys(env).filter((k) => !CONFIG_VARIABLES.includes(k));
      expect(unknown, `${name} sets variables src/config.ts does not read`).toEqual([]);
      const config = loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v)])));
      expect(config.database.kind).toBe("postgres");
      expect(config.redis?.url).toBe("redis://redis:6379");
      expect(config.trustProxy).toBe(true);
    }
  });

  it("runs coturn with the nodes' TURN secret and an object store for the nodes' attachments", () => {
    const coturn = { ...compose.services.coturn, command: compose.services.coturn?.command?.map(interpolate) };
    expect(coturn?.command).toContain("--use-auth-secret");
    for (const [, node] of nodes) {
      const env = Object.fromEntries(Object.entries(node.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
      expect(coturn.command).toContain(`--static-auth-secret=${env.TURN_SECRET}`);
      const config = loadConfig(env);
      expect(config.turn?.urls.length).toBeGreaterThan(0);
      expect(config.attachments.store.kind).toBe("s3");
      expect(compose.services[new URL(env.S3_ENDPOINT).hostname]?.image).toMatch(/minio/);
    }
  });

  it("points every node at services that exist in the file", () => {
    const names = new Set(services.map(([name]) => name));
    for (const [, node] of nodes) {
      for (const dependency of Object.keys(node.depends_on ?? {})) expect(names.has(dependency)).toBe(true);
      for (const value of Object.values(node.environment ?? {})) {
        const host = /^[a-z]+:\/\/(?:[^@/]*@)?([a-z0-9-]+)[:/]/.exec(interpolate(value))?.[1];
        if (host) expect(names.has(host), `${value} names a host compose does not run`).toBe(true);
      }
    }
  });
});
