// Abuse limits: refused calls get RATE_LIMITED with retryAfter, count per device, per IP and per claim target,
// aliases cannot dodge them (in mutations or in lookups), graphql-ws is limited like HTTP, subscriptions started are
// counted, and with Redis the count holds across nodes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "graphql-ws";
import {
  ClaimPreKeyBundlesDocument,
  InboxDocument,
  PreKeyStatusDocument,
  UploadPreKeysDocument,
  UserByUsernameDocument,
} from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest, type GraphQLRequestError } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { SECOND_IP, postFrom, wsClientFrom } from "../helpers/address.ts";
import { usingPostgres, usingRedis } from "../helpers/database.ts";
import { useDevice, useServer } from "../helpers/fixture.ts";
import { gql, postRaw, refusal } from "../helpers/graphql.ts";
import { collect } from "../helpers/live.ts";
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

// Queries and subscriptions: a lookup is charged per field occurrence (15 aliased userByUsername are 15 lookups), and
// every subscription started is charged, so neither username enumeration nor subscription churn walks around them.
const lookups = (names: string[]) =>
  `{ ${names.map((n, i) => `u${i}: userByUsername(username: ${JSON.stringify(n)}) { id }`).join(" ")} }`;
const guesses = (from: number) => Array.from({ length: 15 }, (_, i) => `guess${from + i}`);
const QUERY_LIMITS = { RATE_LIMITS: "on", RATE_LIMIT_REGISTRATIONS_IP: "off" };

describe("username enumeration, per device", () => {
  const server = useServer({ ...QUERY_LIMITS, RATE_LIMIT_LOOKUPS: "20/1m" });
  const alice = useDevice(server);
  const bob = useDevice(server, { username: "bob_the_target" });

  it("answers 15 aliased lookups, refuses the next 15 (20 per minute), and another device still looks up", async () => {
    const first = await postRaw(server.url, { query: lookups([...guesses(0).slice(1), "bob_the_target"]) }, alice.token);
    expect(first.errors).toBeUndefined();
    expect((first.data as Record<string, { id: string } | null>).u14).toEqual({ id: bob.userId });
    const second = await postRaw(server.url, { query: lookups(guesses(15)) }, alice.token);
    expect(second.data ?? null).toBeNull();
    expect(second.errors?.[0].extensions?.code).toBe("RATE_LIMITED");
    expect(second.errors?.[0].extensions?.retryAfter).toBeLessThanOrEqual(60);
    // Refused calls count too: a single lookup is still refused; the other query families are not touched.
    const single = await refusal(alice.http.request(UserByUsernameDocument, { username: "bob_the_target" }));
    expect(single.code).toBe("RATE_LIMITED");
    expect((await alice.http.request(PreKeyStatusDocument)).preKeyStatus).toBeTruthy();
    expect((await bob.http.request(UserByUsernameDocument, { username: "bob_the_target" })).userByUsername?.id).toBe(bob.userId);
  });
});

describe("username enumeration, per IP", () => {
  const server = useServer({ ...QUERY_LIMITS, RATE_LIMIT_LOOKUPS: "1000/1m", RATE_LIMIT_LOOKUPS_IP: "40/1m" });
  const devices = [useDevice(server), useDevice(server), useDevice(server)];

  it("counts every device of one address together, and another address is not affected", async () => {
    const [a, b, c] = devices;
    for (const [i, d] of [a, b].entries()) {
      expect((await postRaw(server.url, { query: lookups(guesses(15 * i)) }, d.token)).errors).toBeUndefined();
    }
    const third = await postRaw(server.url, { query: lookups(guesses(30)) }, c.token);
    expect(third.errors?.[0].extensions?.code).toBe("RATE_LIMITED");
    // Unauthenticated callers are charged by address alone (and refused by the limit before authorization).
    expect((await postRaw(server.url, { query: lookups(guesses(45)) })).errors?.[0].extensions?.code).toBe("RATE_LIMITED");
    const elsewhere = await postFrom(SECOND_IP, server.url, { query: lookups(guesses(45)) }, c.token);
    expect(elsewhere.errors).toBeUndefined();
  });
});

describe("subscription churn", () => {
  const server = useServer({ ...QUERY_LIMITS, RATE_LIMIT_SUBSCRIPTIONS: "4/1m", RATE_LIMIT_SUBSCRIPTIONS_IP: "6/1m" });
  // No one-time keys: every inbox subscription starts with a "pre-keys low" event, which shows it was accepted.
  const alice = useDevice(server, { oneTimeKeys: 0 });
  const bob = useDevice(server, { oneTimeKeys: 0 });

  const started = async (ws: Client) => {
    const sub = collect(ws, InboxDocument);
    try {
      await sub.until((items) => items.length > 0, 30_000, "the first inbox event");
      return null;
    } catch (err) {
      return err as GraphQLRequestError;
    } finally {
      sub.stop();
    }
  };

  it("refuses the fifth subscription of a device within the minute, the seventh of an address, not another address", async () => {
    const ws = openWs(server.url, alice.token, { lazy: false });
    for (let i = 0; i < 4; i++) expect(await started(ws)).toBeNull();
    const fifth = await started(ws);
    expect(fifth?.code).toBe("RATE_LIMITED");
    expect(fifth?.extensions.retryAfter).toBeLessThanOrEqual(60);
    // Queries on the same socket are not subscriptions: answered.
    expect((await wsRequest(ws, PreKeyStatusDocument)).preKeyStatus).toBeTruthy();
    await ws.dispose();

    // The address has used 5 of 6 (the refused one counts): bob's first passes, his second is the address's seventh.
    const wsBob = openWs(server.url, bob.token, { lazy: false });
    expect(await started(wsBob)).toBeNull();
    expect((await started(wsBob))?.code).toBe("RATE_LIMITED");
    await wsBob.dispose();
    const bobElsewhere = wsClientFrom(SECOND_IP, server.url, bob.token);
    expect(await started(bobElsewhere)).toBeNull();
    await bobElsewhere.dispose();
  });
});

describe("query limits across nodes", () => {
  it.skipIf(!usingPostgres || !usingRedis)("two nodes sharing Redis count one device's lookups together", async () => {
    const env = { ...QUERY_LIMITS, RATE_LIMIT_LOOKUPS: "20/1m", BUS_PREFIX: busPrefix() };
    const n1 = await startServer(env);
    const n2 = await startServer(env, { db: n1.db });
    try {
      const d = await registerDevice(n1.url);
      expect((await postRaw(n1.url, { query: lookups(guesses(0)) }, d.token)).errors).toBeUndefined();
      const onOther = await postRaw(n2.url, { query: lookups(guesses(15)) }, d.token);
      expect(onOther.errors?.[0].extensions?.code).toBe("RATE_LIMITED");
    } finally {
      await n2.close();
      await n1.close();
    }
  });
});
