// GraphQL armor: depth, cost, alias, directive and token limits refuse with LIMIT_EXCEEDED before anything runs;
// unauthenticated callers get no field suggestions; introspection follows INTROSPECTION. HTTP and graphql-ws alike.
import { describe, expect, it } from "vitest";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { gql, postRaw, refusal } from "../helpers/graphql.ts";
import { useServer, useDevice } from "../helpers/fixture.ts";

const codes = (r: { errors?: { extensions?: { code?: string } }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { deviceId }`).join(" ")} }`;

describe("armor with the default limits", () => {
  const server = useServer();
  const alice = useDevice(server);

  it("accepts 15 aliases and refuses 16", async () => {
    expect((await postRaw(server.url, { query: aliases(15) }, alice.token)).errors).toBeUndefined();
    const r = await postRaw(server.url, { query: aliases(16) }, alice.token);
    expect(codes(r)).toContain("LIMIT_EXCEEDED");
    expect(r.data ?? null).toBeNull();
  });

  it("refuses a document of more than 2,000 tokens while parsing", async () => {
    const query = `{ me { ${"deviceId ".repeat(2_100)} } }`;
    const r = await postRaw(server.url, { query }, alice.token);
    expect(codes(r)).toEqual(["LIMIT_EXCEEDED"]);
    expect(r.errors![0].message).toMatch(/Token limit/);
  });

  it("refuses more than 50 directives", async () => {
    const query = `{ me { deviceId ${"@include(if: true) ".repeat(51)} } }`;
    expect(codes(await postRaw(server.url, { query }, alice.token))).toContain("LIMIT_EXCEEDED");
  });

  it("refuses a query nested deeper than 12 fields, whatever the fields", async () => {
    const query = `{ me ${"{ a ".repeat(12)}${"}".repeat(12)} }`;
    expect(codes(await postRaw(server.url, { query }, alice.token))).toContain("LIMIT_EXCEEDED");
  });

  it("hides field suggestions from callers without a valid token, shows them to a device", async () => {
    const anon = await postRaw(server.url, { query: "{ mee { deviceId } }" });
    expect(anon.errors![0].message).not.toMatch(/Did you mean/);
    const wrong = await postRaw(server.url, { query: "{ mee { deviceId } }" }, "vgt_not-a-real-token");
    expect(wrong.errors![0].message).not.toMatch(/Did you mean/);
    const authed = await postRaw(server.url, { query: "{ mee { deviceId } }" }, alice.token);
    expect(authed.errors![0].message).toMatch(/Did you mean "me"/);
    // Yoga caches validation per document: the stranger after the device still gets the masked message.
    const again = await postRaw(server.url, { query: "{ mee { deviceId } }" });
    expect(again.errors![0].message).not.toMatch(/Did you mean/);
  });

  it("answers introspection by default", async () => {
    const r = await postRaw(server.url, { query: "{ __schema { queryType { name } } }" });
    expect(r.data).toEqual({ __schema: { queryType: { name: "Query" } } });
  });

  it("applies the same armor over graphql-ws", async () => {
    const ws = openWs(server.url, alice.token);
    try {
      const err = await refusal(wsRequest(ws, gql(aliases(16))));
      expect(err.code).toBe("LIMIT_EXCEEDED");
      expect(await wsRequest(ws, gql(aliases(2)))).toMatchObject({ a0: { deviceId: 1 } });
    } finally {
      await ws.dispose();
    }
  });
});

describe("armor configured tighter", () => {
  const server = useServer({ INTROSPECTION: "off", MAX_QUERY_DEPTH: "2", MAX_QUERY_COST: "20" });
  const alice = useDevice(server);

  it("refuses introspection when INTROSPECTION=off, over HTTP and graphql-ws", async () => {
    const r = await postRaw(server.url, { query: "{ __schema { queryType { name } } }" });
    expect(r.errors![0].message).toMatch(/introspection/i);
    const ws = openWs(server.url, alice.token);
    try {
      await refusal(wsRequest(ws, gql("{ __type(name: \"Query\") { name } }")));
    } finally {
      await ws.dispose();
    }
  });

  it("refuses by depth and by cost as configured", async () => {
    const depth3 = `{ user(id: "${alice.userId}") { devices { deviceId } } }`;
    expect(codes(await postRaw(server.url, { query: depth3 }, alice.token))).toContain("LIMIT_EXCEEDED");
    // Armor's cost: 2 per object plus 1.5 x its children, so three of these are about 28.
    const costly = `{ ${["a", "b", "c"].map((a) => `${a}: me { deviceId name registrationId createdAt userId }`).join(" ")} }`;
    expect(codes(await postRaw(server.url, { query: costly }, alice.token))).toContain("LIMIT_EXCEEDED");
    expect((await postRaw(server.url, { query: "{ me { deviceId } }" }, alice.token)).data).toEqual({ me: { deviceId: 1 } });
  });
});
