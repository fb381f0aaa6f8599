// The account directory: a 0700 directory holding one SQLite database (account.db, 0600) with the device's
// credentials, Signal and MLS state, and local history. A directory written by the earlier file store is migrated
// into it on open (store/migrate.ts).
import { promises as fs } from "node:fs";
import path from "node:path";
import { StagedKeyValueStore } from "./signal/kv.ts";
import { migrateFileStore } from "./store/migrate.ts";
import { SqliteAccountStore } from "./store/sqlite-store.ts";
import type { AccountInfo, AccountStore } from "./store/types.ts";

export type { AccountInfo };
export { FileKeyValueStore } from "./store/legacy-files.ts";

const DIR_MODE = 0o700;
export const DATABASE_FILE = "account.db";

export class AccountDirectory {
  /** The same store as kv, as the Signal stores see it: decryptions stage their writes here. */
  readonly signalKv: StagedKeyValueStore;

  private constructor(
    readonly dir: string,
    /** Everything the device keeps; its generic key/value surface is what Signal and MLS state live in. */
    readonly kv: AccountStore,
    /** Messages that came over from an older file store on this open (null: none to migrate). */
    readonly migratedMessages: number | null,
  ) {
    this.signalKv = new StagedKeyValueStore(kv);
  }

  static async open(dir: string): Promise<AccountDirectory> {
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    await fs.chmod(dir, DIR_MODE);
    const store = SqliteAccountStore.open(path.join(dir, DATABASE_FILE));
    try {
      const migrated = await migrateFileStore(dir, store);
      return new AccountDirectory(dir, store, migrated);
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  readInfo(): Promise<AccountInfo | null> {
    return this.kv.readInfo();
  }

  writeInfo(info: AccountInfo): Promise<void> {
    return this.kv.apply({ info });
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
