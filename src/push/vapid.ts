// The server's VAPID key pair (RFC 8292): from configuration, or in embedded mode generated once into DATA_DIR
// (vapid.json, owner-only) so browser subscriptions made against its public key keep working across restarts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import webpush from "web-push";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import type { VapidKeys } from "./sender.ts";

const FILE = "vapid.json";

export function resolveVapidKeys(config: Config, logger: Logger): VapidKeys | null {
  if (config.push.vapid) return config.push.vapid;
  if (config.database.kind === "postgres") {
    // Every node must sign with the same key, so a shared database needs it from configuration.
    logger.warn("no PUSH_VAPID_PUBLIC_KEY/PUSH_VAPID_PRIVATE_KEY: Web Push registrations are refused");
    return null;
  }
  const dir = config.database.dataDir;
  // An in-memory database forgets its subscriptions on exit anyway: a key pair for this run is enough.
  if (dir.startsWith("memory://")) return webpush.generateVAPIDKeys();
  const path = join(dir, FILE);
  if (existsSync(path)) {
    const keys = JSON.parse(readFileSync(path, "utf8")) as VapidKeys;
    if (typeof keys.publicKey === "string" && typeof keys.privateKey === "string") return keys;
    throw new Error(`${path} does not hold a VAPID key pair`);
  }
  const keys = webpush.generateVAPIDKeys();
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, JSON.stringify(keys), { mode: 0o600, flag: "wx" });
  logger.info({ path }, "VAPID key pair generated");
  return { publicKey: keys.publicKey, privateKey: keys.privateKey };
}
