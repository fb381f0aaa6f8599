// Registers benchmark devices over the public API with real libsignal keys.
import { RegisterAccountDocument } from "../../src/client/generated/graphql.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { HttpTransport } from "../../src/client/transport.ts";

export interface BenchDevice {
  userId: string;
  deviceId: number;
  token: string;
  registrationId: number;
}

/** Registers `count` accounts, `concurrency` at a time, each with `oneTimeKeys` one-time keys of each kind. */
export async function registerMany(url: string, count: number, oneTimeKeys: number, concurrency = 8): Promise<BenchDevice[]> {
  const out: BenchDevice[] = [];
  let next = 0;
  const anon = new HttpTransport(url);
  async function worker() {
    while (next < count) {
      next++;
      const signal = await SignalDevice.open(new MemoryKeyValueStore());
      const keys = await signal.registrationKeys(oneTimeKeys);
      const { registerAccount } = await anon.request(RegisterAccountDocument, { input: { keys } });
      out.push({ ...registerAccount, registrationId: signal.registrationId });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}
