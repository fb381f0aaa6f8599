// Registered devices with real libsignal keys (private halves in memory), for tests.
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { HttpTransport } from "../../src/client/transport.ts";
import {
  ClaimPreKeyBundlesDocument,
  CreateDeviceLinkDocument,
  LinkDeviceDocument,
  RegisterAccountDocument,
} from "../../src/client/generated/graphql.ts";

export interface TestDevice {
  userId: string;
  deviceId: number;
  token: string;
  signal: SignalDevice;
  http: HttpTransport;
  address: { userId: string; deviceId: number };
}

let counter = 0;
export function uniqueUsername(prefix = "user"): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`.slice(0, 32);
}

export async function registerDevice(
  url: string,
  opts: { username?: string | null; oneTimeKeys?: number } = {},
): Promise<TestDevice> {
  const signal = await SignalDevice.open(new MemoryKeyValueStore());
  const keys = await signal.registrationKeys(opts.oneTimeKeys ?? 5);
  const anon = new HttpTransport(url);
  const { registerAccount } = await anon.request(RegisterAccountDocument, {
    input: { username: opts.username === undefined ? uniqueUsername() : opts.username, keys },
  });
  const address = { userId: registerAccount.userId, deviceId: registerAccount.deviceId };
  return { ...address, token: registerAccount.token, signal, http: new HttpTransport(url, registerAccount.token), address };
}

export async function linkNewDevice(url: string, existing: TestDevice, oneTimeKeys = 5): Promise<TestDevice> {
  const { createDeviceLink } = await existing.http.request(CreateDeviceLinkDocument);
  const signal = await SignalDevice.open(new MemoryKeyValueStore());
  const keys = await signal.registrationKeys(oneTimeKeys);
  const { linkDevice } = await new HttpTransport(url).request(LinkDeviceDocument, {
    input: { linkToken: createDeviceLink.token, keys },
  });
  const address = { userId: linkDevice.userId, deviceId: linkDevice.deviceId };
  return { ...address, token: linkDevice.token, signal, http: new HttpTransport(url, linkDevice.token), address };
}

/** Claims the peer's bundles and starts a Signal session with each of its devices. */
export async function startSessions(from: TestDevice, peerUserId: string): Promise<number> {
  const { claimPreKeyBundles } = await from.http.request(ClaimPreKeyBundlesDocument, { userId: peerUserId });
  for (const b of claimPreKeyBundles) await from.signal.processBundle(from.address, b);
  return claimPreKeyBundles.length;
}
