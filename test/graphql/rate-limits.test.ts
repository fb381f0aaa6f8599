// Abuse limits: refused calls get RATE_LIMITED with retryAfter, count per device, per IP and per claim target,
// aliases cannot dodge them, graphql-ws is limited like HTTP, and with Redis the count holds across nodes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClaimPreKeyBundlesDocument,
  PreKeyStatusDocument,
  UploadPreKeysDocument,
} from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { usingPostgres, usingRedis } from "../helpers/database.ts";
import { gql, refusal } from "../helpers/graphql.ts";
import { busPrefix, startServer, type TestServer } from "../helpers/server.ts";

const LIMITS = {
  RATE_LIMITS: "on",
  RATE_LIMIT_KEY_UPLOADS: "3/1m",
  RATE_LIMIT_REGISTRATIONS_IP: "5/1h",
  RATE_LIMIT_BUNDLE_CLAIMS_PER_TARGET: "2/1m",
};

const upload = async (d: TestDevice) => ({ input: await d.signal.oneTimeKeys(1) });
const ecCount = async (d: TestDevice) => (await d.http.request(PreKeyStatusDocument)).preKeyStatus.oneTimePreKeys;

describe("rate limits", () => {
  let server: TestServer;
  let alice: TestDevice, bob: TestDevice, carol: TestDevice, dave: TestDevice, erin: TestDevice;
  beforeAll(async () => {
    server = await startServer(LIMITS);
    [alice, bob, carol, dave, erin] = await Promise.all([1, 2, 3, 4, 5].map(() => registerDevice(server.url)));
  });
  afterAll(() => server.close());

  it("refuses the sixth registration from one IP with RATE_LIMITED and a retryAfter within the window", async () => {
    const err = await refusal(registerDevice(server.url));
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.extensions.retryAfter).toBeGreaterThanOrEqual(1);
    expect(err.extensions.retryAfter).toBeLessThanOrEqual(3600);
  });

  it("counts key uploads per device: the fourth is refused and stores nothing, another device is unaffected", async () => {
    for (let i = 0; i < 3; i++) await alice.http.request(UploadPreKeysDocument, await upload(alice));
    const before = await ecCount(alice);
    const err = await refusal(alice.http.request(UploadPreKeysDocument, await upload(alice)));
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.extensions.retryAfter).toBeLessThanOrEqual(60);
    expect(await ecCount(alice)).toBe(before);
    await bob.http.request(UploadPreKeysDocument, await upload(bob));
  });

  it("charges every aliased field: one operation of three uploads over the limit runs none of them", async () => {
    const before = await ecCount(bob); // bob has used 1 of 3
    const doc = gql(`mutation($a: UploadPreKeysInput!, $b: UploadPreKeysInput!, $c: UploadPreKeysInput!) {
      a: uploadPreKeys(input: $a) { oneTimePreKeys }
      b: uploadPreKeys(input: $b) { oneTimePreKeys }
      ... on Mutation { c: uploadPreKeys(input: $c) { oneTimePreKeys } }
    }`);
    const vars = { a: (await upload(bob)).input, b: (await upload(bob)).input, c: (await upload(bob)).input };
    const err = await refusal(bob.http.request(doc, vars));
    expect(err.code).toBe("RATE_LIMITED");
    expect(await ecCount(bob)).toBe(before);
  });

  it("limits claims per requester-target pair, not other targets or other requesters", async () => {
    for (let i = 0; i < 2; i++) await carol.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId });
    const err = await refusal(carol.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId }));
    expect(err.code).toBe("RATE_LIMITED");
    await carol.http.request(ClaimPreKeyBundlesDocument, { userId: bob.userId });
    await dave.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId });
  });

  it("limits operations over graphql-ws the same way", async () => {
    const ws = openWs(server.url, erin.token);
    try {
      for (let i = 0; i < 3; i++) await wsRequest(ws, UploadPreKeysDocument, await upload(erin));
      const err = await refusal(wsRequest(ws, UploadPreKeysDocument, await upload(erin)));
      expect(err.code).toBe("RATE_LIMITED");
      expect(err.extensions.retryAfter).toBeGreaterThanOrEqual(1);
      // Queries are not mutation families: still answered.
      expect((await wsRequest(ws, PreKeyStatusDocument)).preKeyStatus.oneTimePreKeys).toBeGreaterThan(0);
    } finally {
      await ws.dispose();
    }
  });
});

describe("rate limits across nodes", () => {
  it.skipIf(!usingPostgres || !usingRedis)("two nodes sharing Redis count one device's uploads together", async () => {
    const prefix = busPrefix();
    const env = { ...LIMITS, RATE_LIMIT_KEY_UPLOADS: "4/1m", BUS_PREFIX: prefix };
    const n1 = await startServer(env);
    const n2 = await startServer(env, { db: n1.db });
    try {
      const d = await registerDevice(n1.url);
      const via = (s: TestServer) => s.http(d.token);
      for (const s of [n1, n2, n1, n2]) await via(s).request(UploadPreKeysDocument, await upload(d));
      for (const s of [n1, n2]) {
        const err = await refusal(via(s).request(UploadPreKeysDocument, await upload(d)));
        expect(err.code).toBe("RATE_LIMITED");
      }
    } finally {
      await n2.close();
      await n1.close();
    }
  });
});
