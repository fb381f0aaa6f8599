// The small key-value interface the Signal stores are written against, so the same stores run in memory (tests)
// or persisted to disk (the SDK's account directory).
export interface KeyValueStore {
  get(key: string): Promise<Uint8Array<ArrayBuffer> | undefined>;
  set(key: string, value: Uint8Array<ArrayBuffer>): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key that starts with prefix, in no particular order. */
  list(prefix: string): Promise<string[]>;
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

  async commit(): Promise<void> {
    const writes = this.staged;
    this.staged = null;
    for (const [k, v] of writes ?? []) await (v ? this.inner.set(k, v) : this.inner.delete(k));
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
