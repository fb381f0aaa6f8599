// Self-destruct on this device: one timer per expiring message; when it fires the message is removed from the store
// and the app told. Timers are re-armed from the store on start, so what expired while closed goes at once.
import type { MessageStore } from "./message-store.ts";
import type { MessageRecord } from "./store/types.ts";

type Expiring = Pick<MessageRecord, "messageId" | "peerUserId" | "expiresAt">;

export class ExpiryTimers {
  private timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private store: MessageStore,
    private onExpired: (m: { messageId: string; peerUserId: string }) => void,
  ) {}

  schedule(m: Expiring): void {
    if (!m.expiresAt || this.stopped) return;
    this.clear(m.messageId);
    const delay = Math.max(0, Date.parse(m.expiresAt) - Date.now());
    const t = setTimeout(() => void this.expire(m), Math.min(delay, 2 ** 31 - 1));
    t.unref();
    this.timers.set(m.messageId, t);
  }

  clear(messageId: string): void {
    const t = this.timers.get(messageId);
    if (t) clearTimeout(t);
    this.timers.delete(messageId);
  }

  private async expire(m: Expiring): Promise<void> {
    this.timers.delete(m.messageId);
    if (Date.parse(m.expiresAt!) > Date.now()) return this.schedule(m);
    if (!this.stopped && (await this.store.remove(m.messageId))) this.onExpired({ messageId: m.messageId, peerUserId: m.peerUserId });
  }

  /** Arms a timer for every expiring message in the store (those past due fire at once). */
  async sweep(): Promise<void> {
    for (const m of await this.store.expiring()) this.schedule(m);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
