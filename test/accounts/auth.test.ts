// Authentication and device management: tokens, links, deactivation (over HTTP and on open WebSockets).
import { describe, expect, it } from "vitest";
import {
  ClaimPreKeyBundlesDocument,
  CreateDeviceLinkDocument,
  DeactivateDeviceDocument,
  DevicesDocument,
  LinkDeviceDocument,
  MeDocument,
  PreKeyStatusDocument,
  UserByUsernameDocument,
} from "../../src/client/generated/graphql.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { HttpTransport, openWs, wsRequest } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, uniqueUsername } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";

describe("authentication and devices", () => {
  const server = useServer({ MAX_DEVICES_PER_USER: "3" });

  it("refuses a missing or wrong token with UNAUTHENTICATED", async () => {
    for (const token of [null, "vgt_not-a-real-token", "x".repeat(300)]) {
      const r = await server.http(token).execute(MeDocument);
      expect(r.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
      expect(JSON.stringify(r)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
  });

  it("registers with a unique, case-insensitive username and finds the user by it", async () => {
    const name = uniqueUsername("Alice");
    const alice = await registerDevice(server.url, { username: name });
    const { me } = await alice.http.request(MeDocument);
    expect(me).toMatchObject({ userId: alice.userId, deviceId: 1, registrationId: alice.signal.registrationId });
    const { userByUsername } = await alice.http.request(UserByUsernameDocument, { username: name.toUpperCase() });
    expect(userByUsername?.id).toBe(alice.userId);
    const dup = await registerDevice(server.url, { username: name.toUpperCase() }).catch((e) => e);
    expect(dup.code).toBe("CONFLICT");
  });

  it("links devices with a one-time token, numbers them, and caps active devices", async () => {
    const alice = await registerDevice(server.url);
    const second = await linkNewDevice(server.url, alice);
    expect(second.deviceId).toBe(2);
    expect(second.userId).toBe(alice.userId);

    // A link token works once.
    const { createDeviceLink } = await alice.http.request(CreateDeviceLinkDocument);
    const signal = await SignalDevice.open(new MemoryKeyValueStore());
    const keys = await signal.registrationKeys(1);
    const anon = new HttpTransport(server.url);
    await anon.request(LinkDeviceDocument, { input: { linkToken: createDeviceLink.token, keys } });
    const again = await anon.execute(LinkDeviceDocument, { input: { linkToken: createDeviceLink.token, keys } });
    expect(again.errors?.[0].extensions?.code).toBe("FORBIDDEN");

    // Three active devices now; the cap (3 in this server) refuses a fourth.
    const over = await linkNewDevice(server.url, alice).catch((e) => e);
    expect(over.code).toBe("LIMIT_EXCEEDED");
    const { devices } = await alice.http.request(DevicesDocument, { userId: alice.userId });
    expect(devices.map((d) => d.deviceId)).toEqual([1, 2, 3]);
  });

  it("a deactivated device's token stops working at once, over HTTP and on an open WebSocket, and its keys are gone", async () => {
    const alice = await registerDevice(server.url);
    const phone = await linkNewDevice(server.url, alice);
    const closed = new Promise<number>((resolve) => {
      const ws = openWs(server.url, phone.token, { lazy: false, onClosed: (code) => resolve(code) });
      void wsRequest(ws, MeDocument).catch(() => {});
    });
    // The socket is up and authenticated before the deactivation.
    const viaWs = openWs(server.url, phone.token);
    expect((await wsRequest(viaWs, MeDocument)).me.deviceId).toBe(phone.deviceId);
    await viaWs.dispose();

    expect((await alice.http.request(DeactivateDeviceDocument, { deviceId: phone.deviceId })).deactivateDevice).toBe(true);
    expect(await closed).toBe(4403);
    expect((await phone.http.execute(MeDocument)).errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    const { devices } = await alice.http.request(DevicesDocument, { userId: alice.userId });
    expect(devices.map((d) => d.deviceId)).toEqual([1]);
    const bob = await registerDevice(server.url);
    const claim = await bob.http.execute(ClaimPreKeyBundlesDocument, { userId: alice.userId, deviceId: phone.deviceId });
    expect(claim.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    // A new WebSocket with the dead token is refused during the handshake.
    const refused = await new Promise<number>((resolve) => {
      const ws = openWs(server.url, phone.token, { lazy: false, onClosed: (code) => resolve(code) });
      void wsRequest(ws, MeDocument).catch(() => {});
    });
    expect(refused).toBe(4403);
  });

  it("deactivateDevice names only the caller's own devices: another account's device cannot be reached", async () => {
    const alice = await registerDevice(server.url);
    const mallory = await registerDevice(server.url);
    await linkNewDevice(server.url, mallory);
    // Mallory's primary names a device id Alice has but Mallory does not: her own account only.
    const missing = await mallory.http.execute(DeactivateDeviceDocument, { deviceId: 3 });
    expect(missing.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect((await alice.http.request(MeDocument)).me).toMatchObject({ userId: alice.userId, deviceId: 1 });
    const { preKeyStatus } = await alice.http.request(PreKeyStatusDocument);
    expect(preKeyStatus.oneTimePreKeys).toBe(5);
  });

  describe("primary-device authority: a stolen linked device cannot take the account", () => {
    it("a linked device cannot deactivate device 1 or a sibling, nor create a link token: FORBIDDEN, nothing changes", async () => {
      const alice = await registerDevice(server.url);
      const laptop = await linkNewDevice(server.url, alice);
      const tablet = await linkNewDevice(server.url, alice);
      for (const deviceId of [1, tablet.deviceId, 9]) {
        const r = await laptop.http.execute(DeactivateDeviceDocument, { deviceId });
        expect(r.errors?.[0].extensions?.code, `device ${deviceId}`).toBe("FORBIDDEN");
        expect(r.data?.deactivateDevice ?? null).toBeNull();
      }
      const link = await laptop.http.execute(CreateDeviceLinkDocument);
      expect(link.errors?.[0].extensions?.code).toBe("FORBIDDEN");
      expect(link.data?.createDeviceLink ?? null).toBeNull();
      // Every device still works and is still listed; no link row was written.
      for (const d of [alice, laptop, tablet]) expect((await d.http.request(MeDocument)).me.deviceId).toBe(d.deviceId);
      const { devices } = await alice.http.request(DevicesDocument, { userId: alice.userId });
      expect(devices.map((d) => d.deviceId)).toEqual([1, laptop.deviceId, tablet.deviceId]);
      expect(await server.app.prisma.deviceLink.count({ where: { userId: alice.userId } })).toBe(2);
    });

    it("a linked device deactivates itself; the primary deactivates a linked device and keeps linking", async () => {
      const alice = await registerDevice(server.url);
      const laptop = await linkNewDevice(server.url, alice);
      const tablet = await linkNewDevice(server.url, alice);
      expect((await laptop.http.request(DeactivateDeviceDocument, { deviceId: laptop.deviceId })).deactivateDevice).toBe(true);
      expect((await laptop.http.execute(MeDocument)).errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
      expect((await alice.http.request(DeactivateDeviceDocument, { deviceId: tablet.deviceId })).deactivateDevice).toBe(true);
      expect((await tablet.http.execute(MeDocument)).errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
      const next = await linkNewDevice(server.url, alice);
      expect(next.deviceId).toBe(4);
      const { devices } = await alice.http.request(DevicesDocument, { userId: alice.userId });
      expect(devices.map((d) => d.deviceId)).toEqual([1, 4]);
    });
  });
});
