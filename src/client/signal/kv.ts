// The small key-value interface the Signal stores (and the MLS group manager) are written against, so the same stores
// run in memory (tests) or persisted (the SDK's account database).
export type KvWrite = { key: string; value: Uint8Array<ArrayBuffer> | null };

export interface KeyValueStore {
  get(key: string): Promise<Uint8Array<ArrayBuffer> | undefined>;
  set(key: string, value: Uint8Array<ArrayBuffer>): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key that starts with prefix, in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Several writes at once, atomically where the store can (null deletes). */
  apply?(batch: { kv: KvWrite[] }): Promise<void>;
}

export class MemoryKeyValueStore implements KeyValueStore {
  private map = new Map<string, Uint8Array<ArrayBuffer>>();
  async get(key: string) {
    return this.map.get(key);
  }
  async set(key: string, value: Uint8Array<ArrayBuffer>) {
    this.map.set(key, value);
  }
  async delete(key: string) {
    this.map.delete(key);
  }
  async list(prefix: string) {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
}

/**
 * Holds writes back between begin() and commit(), so a decryption's state changes (ratchet step, used pre-key) reach
 * disk only after what depends on them (the plaintext) was saved, and vanish with rollback() if the step failed.
 * Outside begin/commit it writes straight through. Callers serialise use (one staged operation at a time).
 */
export class StagedKeyValueStore implements KeyValueStore {
  private staged: Map<string, Uint8Array<ArrayBuffer> | null> | null = null;

  constructor(readonly inner: KeyValueStore) {}

  begin(): void {
    if (this.staged) throw new Error("a staged operation is already open");
    this.staged = new Map();
  }

  /**
   * Ends the staged operation and hands its writes over, for the caller to apply in one transaction with what depends
   * on them (the received message). Reads see the inner store again, so apply before releasing the caller's lock.
   */
  take(): KvWrite[] {
    const writes = [...(this.staged ?? [])].map(([key, value]) => ({ key, value }));
    this.staged = null;
    return writes;
  }

  async commit(): Promise<void> {
    const kv = this.take();
    if (this.inner.apply) return this.inner.apply({ kv });
    for (const { key, value } of kv) await (value ? this.inner.set(key, value) : this.inner.delete(key));
  }

  rollback(): void {
    this.staged = null;
  }

  async get(key: string) {
    if (this.staged?.has(key)) return this.staged.get(key) ?? undefined;
    return this.inner.get(key);
  }
  async set(key: string, value: Uint8Array<ArrayBuffer>) {
    if (this.staged) this.staged.set(key, value);
    else await this.inner.set(key, value);
  }
  async delete(key: string) {
    if (this.staged) this.staged.set(key, null);
    else await this.inner.delete(key);
  }
  async list(prefix: string) {
    const keys = new Set(await this.inner.list(prefix));
    for (const [k, v] of this.staged ?? []) if (k.startsWith(prefix)) v ? keys.add(k) : keys.delete(k);
    return [...keys];
  }
}
