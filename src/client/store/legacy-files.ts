// The account directory format of SDK versions before the SQLite store, kept to migrate such directories on open
// (migrate.ts) and to build them in tests: one file per key under store/ (name = base64url of the key) plus
// account.json. Every write went to a temporary file that was fsynced and renamed over the old one.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { KeyValueStore } from "../signal/kv.ts";

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** Writes data to file atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await fs.open(tmp, "w", FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const d = await fs.open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

// Keys are arbitrary strings ("session/<uuid>.2"); base64url makes them safe, reversible file names.
const fileName = (key: string) => Buffer.from(key, "utf8").toString("base64url");
const keyName = (file: string) => Buffer.from(file, "base64url").toString("utf8");

export class FileKeyValueStore implements KeyValueStore {
  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<FileKeyValueStore> {
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    // Leftovers of a write interrupted before its rename are garbage by construction.
    for (const f of await fs.readdir(dir)) if (f.endsWith(".tmp")) await fs.rm(path.join(dir, f), { force: true });
    return new FileKeyValueStore(dir);
  }

  async get(key: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    try {
      const buf = await fs.readFile(path.join(this.dir, fileName(key)));
      return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async set(key: string, value: Uint8Array<ArrayBuffer>): Promise<void> {
    await writeFileAtomic(path.join(this.dir, fileName(key)), value);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(path.join(this.dir, fileName(key)), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for (const f of await fs.readdir(this.dir)) {
      if (f.startsWith(".")) continue;
      const k = keyName(f);
      if (k.startsWith(prefix)) out.push(k);
    }
    return out;
  }
}
