// MLS group members for tests: a registered device with real ts-mls state, and a live `groupEvents` subscription
// whose events the test can wait for (every wait is bounded).
import type { Client as WsClient } from "graphql-ws";
import { GroupEventsDocument, type GroupEventsSubscription } from "../../src/client/generated/graphql.ts";
import { MlsGroupManager, type GroupEventData, type GroupUpdate } from "../../src/client/mls/groups.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { openWs } from "../../src/client/transport.ts";
import { collect, type Collector } from "./live.ts";
import { registerDevice, type TestDevice } from "./accounts.ts";
import { sleep } from "./wait.ts";

export interface MlsMember extends TestDevice {
  mls: MlsGroupManager;
}

export async function mlsMember(url: string, keyPackages = 3): Promise<MlsMember> {
  const device = await registerDevice(url, { oneTimeKeys: 0 });
  const mls = new MlsGroupManager(new MemoryKeyValueStore(), device.http, device.address);
  if (keyPackages > 0) await mls.keyPackages.upload(keyPackages, true);
  return { ...device, mls };
}

/** Raw events of one device's `groupEvents` subscription (collected by the shared collector). */
export class EventFeed {
  readonly events: GroupEventData[] = [];
  private readonly collector: Collector<GroupEventsSubscription>;
  readonly ws: WsClient;
  /** Settles when the socket is acknowledged (connection_ack). */
  readonly connected: Promise<void>;

  constructor(url: string, token: string, onEvent?: (e: GroupEventData) => void, retryAttempts = 0) {
    this.ws = openWs(url, token, { lazy: false, retryAttempts });
    this.connected = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("the subscription socket was not acknowledged in 60 s")), 60_000);
      this.ws.on("connected", () => {
        clearTimeout(t);
        resolve();
      });
    });
    this.collector = collect(this.ws, GroupEventsDocument, undefined, (v) => {
      const e = v.groupEvents as GroupEventData | undefined;
      if (!e) return;
      this.events.push(e);
      onEvent?.(e);
    });
  }

  get errors(): unknown[] {
    return this.collector.errors;
  }

  /** Resolves once `predicate` holds for the events so far; rejects after `ms` or when the subscription fails. */
  async waitFor(predicate: (events: GroupEventData[]) => boolean, ms = 8_000, what = "events"): Promise<void> {
    await this.collector.until(() => predicate(this.events), ms, what);
  }

  async close(): Promise<void> {
    this.collector.stop();
    await this.ws.dispose();
  }
}

/** A member whose subscription feeds its group manager in order; decrypted updates are collected. */
export class LiveMember {
  readonly updates: GroupUpdate[] = [];
  readonly feed: EventFeed;
  private pump: Promise<void> = Promise.resolve();
  failures: unknown[] = [];

  constructor(readonly m: MlsMember, url: string, retryAttempts = 0) {
    // Events are processed one at a time, in the order the subscription delivered them.
    this.feed = new EventFeed(url, m.token, (e) => {
      this.pump = this.pump.then(async () => {
        try {
          const u = await m.mls.handle(e);
          if (u) this.updates.push(u);
          await m.mls.ack([e.id]);
        } catch (err) {
          this.failures.push(err);
        }
      });
    }, retryAttempts);
  }

  texts(groupId: string): string[] {
    return this.updates.filter((u) => u.groupId === groupId && u.plaintext).map((u) => Buffer.from(u.plaintext!).toString());
  }

  async waitForTexts(groupId: string, n: number, ms = 8_000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.texts(groupId).length < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `${this.m.userId} timed out: ${this.texts(groupId).length}/${n} texts; events ${this.feed.events
            .map((e) => `${e.kind}@${e.seq}/${e.epoch}`)
            .join(" ")}; updates ${this.updates.length}; failures: ${this.failures.map(String).join("; ")}`,
        );
      }
      await sleep(25);
    }
    return this.texts(groupId);
  }

  async waitForUpdate(pred: (u: GroupUpdate) => boolean, ms = 8_000): Promise<GroupUpdate> {
    const deadline = Date.now() + ms;
    for (;;) {
      const u = this.updates.find(pred);
      if (u) return u;
      if (Date.now() > deadline) throw new Error(`timed out waiting for an update; failures: ${this.failures.map(String).join("; ")}`);
      await sleep(25);
    }
  }

  close() {
    return this.feed.close();
  }
}

export const text = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
