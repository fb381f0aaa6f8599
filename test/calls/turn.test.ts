// turnServers against a real coturn (use-auth-secret): the credential it hands out allocates a relay, a forged one
// does not, the same credential is refused once past its expiry; no config gives an empty list; the query needs a
// device token, is rate-limited, and bad TURN settings stop the server from starting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TurnServersDocument } from "../../src/client/generated/graphql.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { hasCoturn, startCoturn, tryAllocation, type Coturn } from "../helpers/coturn.ts";
import { refusal } from "../helpers/graphql.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const TTL = 5;

describe.skipIf(!hasCoturn())("turnServers", () => {
  let turn: Coturn;
  let server: TestServer;
  let alice: TestDevice;
  beforeAll(async () => {
    turn = await startCoturn();
    server = await startServer({
      TURN_URLS: `${turn.url}?transport=udp, ${turn.url}?transport=tcp`,
      TURN_SECRET: turn.secret,
      TURN_TTL_SECONDS: String(TTL),
      RATE_LIMITS: "on",
      RATE_LIMIT_TURN_CREDENTIALS: "4/1m",
    });
    alice = await registerDevice(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await turn?.stop();
  });

  it("hands out credentials coturn accepts, and refuses once they expired", async () => {
    const t0 = Date.now();
    const { turnServers } = await alice.http.request(TurnServersDocument);
    expect(turnServers).toHaveLength(1);
    const s = turnServers[0];
    expect(s.urls).toEqual([`${turn.url}?transport=udp`, `${turn.url}?transport=tcp`]);
    expect(s.ttlSeconds).toBe(TTL);
    const [expiry, user] = s.username.split(":");
    expect(user).toBe(alice.userId);
    expect(Number(expiry)).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) + TTL - 1);
    expect(Number(expiry)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + TTL);
    expect(Date.parse(s.expiresAt)).toBe(Number(expiry) * 1000);

    const accepted = await tryAllocation(turn, s.username, s.credential);
    expect(accepted.ok, accepted.output).toBe(true);
    const forged = await tryAllocation(turn, s.username, Buffer.from("not the password").toString("base64"));
    expect(forged.ok).toBe(false);
    expect(forged.output).toMatch(/Cannot complete Allocation/);

    // Bounded wait: the expiry is at most TTL seconds away.
    await new Promise((r) => setTimeout(r, Math.max(0, Number(expiry) * 1000 - Date.now()) + 1_500));
    const expired = await tryAllocation(turn, s.username, s.credential);
    expect(expired.ok).toBe(false);
    expect(expired.output).toMatch(/Cannot complete Allocation/);
  }, 60_000);

  it("needs a device token and is rate-limited per device", async () => {
    expect((await refusal(server.http(null).request(TurnServersDocument))).code).toBe("UNAUTHENTICATED");
    const bob = await registerDevice(server.url);
    for (let i = 0; i < 4; i++) await bob.http.request(TurnServersDocument);
    const err = await refusal(bob.http.request(TurnServersDocument));
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.extensions.retryAfter).toBeLessThanOrEqual(60);
  });

  it("answers an empty list when no TURN server is configured", async () => {
    const plain = await startServer();
    try {
      const carol = await registerDevice(plain.url);
      expect((await carol.http.request(TurnServersDocument)).turnServers).toEqual([]);
    } finally {
      await plain.close();
    }
  });

  it("refuses bad TURN settings at start-up, naming the variable", () => {
    const bad = (env: Record<string, string>) => () => loadConfig({ ...env });
    expect(bad({ TURN_URLS: "turn:127.0.0.1:3478" })).toThrow(/TURN_SECRET: set both or neither/);
    expect(bad({ TURN_SECRET: "s".repeat(32) })).toThrow(/TURN_URLS and TURN_SECRET/);
    expect(bad({ TURN_URLS: "http://example.com", TURN_SECRET: "s".repeat(32) })).toThrow(/TURN_URLS/);
    expect(bad({ TURN_URLS: "turn:127.0.0.1:3478", TURN_SECRET: "short" })).toThrow(/TURN_SECRET/);
    expect(bad({ TURN_URLS: "turn:127.0.0.1:3478", TURN_SECRET: "s".repeat(32), TURN_TTL_SECONDS: "1" })).toThrow(ConfigError);
    const ok = loadConfig({ TURN_URLS: "stun:[::1]:3478 turns:turn.example.com:5349?transport=tcp", TURN_SECRET: "s".repeat(32) });
    expect(ok.turn).toEqual({ urls: ["stun:[::1]:3478", "turns:turn.example.com:5349?transport=tcp"], secret: "s".repeat(32), ttlSeconds: 86_400 });
    expect(loadConfig({}).turn).toBeNull();
  });
});
