// Keeps this device's published keys healthy: refills one-time EC and Kyber pre-keys when the server says they run
// low, and replaces the signed pre-key and the last-resort Kyber key once they are older than the rotation interval.
import {
  PreKeyStatusDocument,
  RotateLastResortKyberPreKeyDocument,
  RotateSignedPreKeyDocument,
  UploadPreKeysDocument,
} from "./generated/graphql.ts";
import type { KeyValueStore } from "./signal/kv.ts";
import type { SignalDevice } from "./signal/device.ts";
import type { HttpTransport } from "./transport.ts";
import type { Mutex } from "./emitter.ts";

export const ONE_TIME_KEY_TARGET = 100;
export const DEFAULT_ROTATION_INTERVAL_MS = 7 * 24 * 60 * 60 * 1000;

const ROTATED_AT = "self/rotatedAt";
/** Replaced signed / last-resort keys kept besides the current one, for PreKey messages still in flight. */
const RETAINED_OLD_KEYS = 2;

export interface PreKeyCounts {
  oneTimePreKeys: number;
  oneTimeKyberPreKeys: number;
}

export class PreKeyMaintainer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private device: () => SignalDevice,
    private http: HttpTransport,
    private kv: KeyValueStore,
    /** Shared with decryption: new keys must not be written while a decryption's writes are staged. */
    private lock: Mutex,
    readonly rotationIntervalMs: number = DEFAULT_ROTATION_INTERVAL_MS,
    private onError: (err: unknown) => void = () => {},
  ) {}

  /** Records that the keys just published at registration or linking are fresh. */
  async markRotated(at = Date.now()): Promise<void> {
    await this.kv.set(ROTATED_AT, new Uint8Array(Buffer.from(String(at))));
  }

  async lastRotatedAt(): Promise<number> {
    const raw = await this.kv.get(ROTATED_AT);
    return raw ? Number(Buffer.from(raw).toString()) : 0;
  }

  /** Uploads as many one-time keys of each kind as the server is short of the target. Returns what was uploaded. */
  topUp(): Promise<PreKeyCounts> {
    return this.serial(async () => {
      const { preKeyStatus } = await this.http.request(PreKeyStatusDocument);
      const ec = Math.max(0, ONE_TIME_KEY_TARGET - preKeyStatus.oneTimePreKeys);
      const kyber = Math.max(0, ONE_TIME_KEY_TARGET - preKeyStatus.oneTimeKyberPreKeys);
      if (ec === 0 && kyber === 0) return { oneTimePreKeys: 0, oneTimeKyberPreKeys: 0 };
      const keys = await this.device().oneTimeKeys(Math.max(ec, kyber));
      await this.http.request(UploadPreKeysDocument, {
        input: { oneTimePreKeys: keys.oneTimePreKeys.slice(0, ec), oneTimeKyberPreKeys: keys.oneTimeKyberPreKeys.slice(0, kyber) },
      });
      return { oneTimePreKeys: ec, oneTimeKyberPreKeys: kyber };
    });
  }

  /** Rotates the signed pre-key and the last-resort Kyber key if they are due (or always, with force). */
  rotateIfDue(force = false): Promise<boolean> {
    return this.serial(async () => {
      if (!force && Date.now() - (await this.lastRotatedAt()) < this.rotationIntervalMs) return false;
      // Old private halves stay in the store: PreKey messages built on them may still be in flight.
      await this.http.request(RotateSignedPreKeyDocument, { key: await this.device().rotateSignedPreKey() });
      await this.http.request(RotateLastResortKyberPreKeyDocument, { key: await this.device().rotateLastResortKyberPreKey() });
      await this.markRotated();
      await this.device().retireOldKeys(RETAINED_OLD_KEYS, 2 * this.rotationIntervalMs);
      return true;
    });
  }

  /** Checks now, then on a timer at a tenth of the interval (at most hourly, at least every 50 ms). */
  start(): void {
    if (this.timer) return;
    const check = () => this.rotateIfDue().catch(this.onError);
    void check();
    const every = Math.min(Math.max(this.rotationIntervalMs / 10, 50), 60 * 60 * 1000);
    this.timer = setInterval(check, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.serial(async () => {}).catch(() => {});
  }

  // One maintenance step at a time (a top-up racing a rotation would reserve key ids twice), and none during a
  // staged decryption.
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }
}
