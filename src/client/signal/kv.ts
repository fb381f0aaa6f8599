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
