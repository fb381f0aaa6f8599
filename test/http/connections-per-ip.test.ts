// MAX_CONNECTIONS_PER_IP: the N+1th WebSocket from one address is refused at the upgrade (HTTP 429), whether the
// sockets before it authenticated or not, while another address still connects; closing one makes room again.
// Behind TRUST_PROXY the address is the one the per-IP rate limits use (the last X-Forwarded-For entry).
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { MeDocument } from "../../src/client/generated/graphql.ts";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import { SECOND_IP, socketFrom, wsClientFrom } from "../helpers/address.ts";
import { useDevice, useServer } from "../helpers/fixture.ts";
import { waitFor } from "../helpers/wait.ts";

const FIRST_IP = "127.0.0.1";

describe("sockets per client IP", () => {
  // A long auth timeout: the unauthenticated sockets must stay open for the whole test.
  const server = useServer({ MAX_CONNECTIONS_PER_IP: "3", WS_AUTH_TIMEOUT_MS: "60000" });
  const alice = useDevice(server);
  const bob = useDevice(server);

  it("refuses the fourth socket from one IP, unauthenticated ones counted; another IP connects; a close makes room", async () => {
    const idle1 = await socketFrom(FIRST_IP, server.url);
    const idle2 = await socketFrom(FIRST_IP, server.url);
    const authed = openWs(server.url, alice.token, { lazy: false }); // stays open between operations
    expect((await wsRequest(authed, MeDocument)).me.userId).toBe(alice.userId);
    expect([idle1.refusedWith, idle2.refusedWith]).toEqual([undefined, undefined]);

    // The fourth: refused before any frame, unauthenticated or with a valid token alike.
    expect((await socketFrom(FIRST_IP, server.url)).refusedWith).toBe(429);
    const bobHere = openWs(server.url, bob.token, { lazy: false });
    await expect(wsRequest(bobHere, MeDocument)).rejects.toBeTruthy();
    await bobHere.dispose();

    // Another address is not affected.
    const elsewhere = wsClientFrom(SECOND_IP, server.url, bob.token);
    expect((await wsRequest(elsewhere, MeDocument)).me.userId).toBe(bob.userId);

    // The refused attempts took no slot; closing an unauthenticated socket frees one.
    idle1.ws.close();
    const again = await waitFor(async () => {
      const s = await socketFrom(FIRST_IP, server.url);
      if (s.refusedWith) return null;
      return s;
    }, "a free slot after a close");
    expect(again.ws.readyState).toBe(WebSocket.OPEN);
    for (const s of [idle2, again]) s.ws.close();
    await authed.dispose();
    await elsewhere.dispose();
  });
});

describe("sockets per client IP behind a trusted proxy", () => {
  const server = useServer({ MAX_CONNECTIONS_PER_IP: "1", TRUST_PROXY: "on", WS_AUTH_TIMEOUT_MS: "60000" });

  it("counts the address the proxy appended, not the proxy's own", async () => {
    const via = (chain: string) => socketFrom(FIRST_IP, server.url, { "x-forwarded-for": chain });
    const a = await via("10.0.0.1");
    expect(a.refusedWith).toBeUndefined();
    // A forged first entry does not make a new client: the last one is what our proxy saw.
    expect((await via("10.9.9.9, 10.0.0.1")).refusedWith).toBe(429);
    const b = await via("10.0.0.2");
    expect(b.refusedWith).toBeUndefined();
    a.ws.close();
    b.ws.close();
  });
});
