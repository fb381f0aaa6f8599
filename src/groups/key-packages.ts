// MLS key packages: devices publish them (checked with ts-mls first), others claim one per device to add a user to a
// group. A claimed key package is never handed out again (the last-resort one excepted); it is kept, marked with the
// claimer, so that the commit using it can be checked against what was claimed, for the metadata retention.
import { AppError, badInput, notFound } from "../errors.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { checkKeyPackage } from "./mls-framing.ts";
import { createKeyPackagesStore, type NewKeyPackage } from "./key-packages-store.ts";

export const MAX_KEY_PACKAGES_PER_UPLOAD = 100;

export interface ClaimedKeyPackage {
  userId: string;
  deviceId: number;
  keyPackage: Uint8Array;
}

export interface KeyPackageStatus {
  available: number;
  hasLastResort: boolean;
  lowWaterMark: number;
  isLow: boolean;
}

export type KeyPackagesService = ReturnType<typeof createKeyPackagesService>;

/** What key packages ask the accounts domain. */
export interface KeyPackageDevices {
  activeDevice(actor: Actor): Promise<unknown>;
  /** The active devices of these users, ordered by user and device. */
  activeDevicesInOrder(userIds: string[]): Promise<{ userId: string; deviceId: number }[]>;
}

export function createKeyPackagesService(
  deps: ServiceDeps,
  accounts: KeyPackageDevices,
  hooks: {
    keyPackagesLow(userId: string, deviceId: number, status: KeyPackageStatus): void;
    /** A device published its first key packages: it can be added to groups now. */
    firstKeyPackages?(userId: string, deviceId: number): void;
    /** Users among these who blocked the claimer: they seem to have no key package, so it cannot add them. */
    blockersOf?(claimer: string, userIds: string[]): Promise<Set<string>>;
  } = {
    keyPackagesLow: () => {},
  },
) {
  const { config } = deps;
  const store = createKeyPackagesStore(deps);

  async function status(device: { userId: string; deviceId: number }): Promise<KeyPackageStatus> {
    const { available, lastResort } = await store.stock(device);
    const lowWaterMark = config.keyPackageLowWaterMark;
    return { available, hasLastResort: lastResort > 0, lowWaterMark, isLow: available < lowWaterMark };
  }

  /** The stock of many devices in one query (a claim for a 1,500-member group must not cost 3,000 queries). */
  async function statuses(devices: { userId: string; deviceId: number }[]) {
    const rows = await store.stocks(devices);
    const lowWaterMark = config.keyPackageLowWaterMark;
    return rows.map((r) => ({
      userId: r.user_id,
      deviceId: r.device_id,
      available: r.available,
      hasLastResort: r.last > 0,
      lowWaterMark,
      isLow: r.available < lowWaterMark,
    }));
  }

  /** Checks every key package before storing any; a bad one refuses the whole upload. Returns how many are stored. */
  async function upload(actor: Actor, keyPackages: Uint8Array[], lastResort?: Uint8Array | null): Promise<number> {
    if (keyPackages.length > MAX_KEY_PACKAGES_PER_UPLOAD) {
      throw badInput(`at most ${MAX_KEY_PACKAGES_PER_UPLOAD} key packages per upload`);
    }
    if (!(await accounts.activeDevice(actor))) throw notFound("device not found");
    const checked: NewKeyPackage[] = [];
    for (const [i, kp] of keyPackages.entries()) {
      checked.push({ ...(await checkKeyPackage(kp, actor, `keyPackages[${i}]`)), bytes: kp });
    }
    const last = lastResort ? { ...(await checkKeyPackage(lastResort, actor, "lastResort")), bytes: lastResort } : null;
    const refs = new Set([...checked, ...(last ? [last] : [])].map((c) => Buffer.from(c.ref).toString("hex")));
    if (refs.size !== checked.length + (last ? 1 : 0)) throw badInput("the same key package appears twice");
    const existing = await store.countRefs([...checked, ...(last ? [last] : [])].map((c) => c.ref));
    if (existing > 0) throw badInput("a key package in this upload was uploaded before");
    const first = !(await store.hasAny(actor));
    await store.insert(actor, checked, last);
    if (first) hooks.firstKeyPackages?.(actor.userId, actor.deviceId);
    return checked.length + (last ? 1 : 0);
  }

  /**
   * One key package per active device of each user, consumed in one transaction. SKIP LOCKED lets concurrent
   * claimers take different rows instead of queueing; a device with none left hands out its last-resort one.
   */
  async function claim(actor: Actor, userIds: string[], only?: { userId: string; deviceId: number }[]): Promise<ClaimedKeyPackage[]> {
    const unique = [...new Set(userIds)];
    const wanted = only ? new Set(only.map((d) => `${d.userId}.${d.deviceId}`)) : null;
    const devices = (await accounts.activeDevicesInOrder(unique)).filter((d) => !wanted || wanted.has(`${d.userId}.${d.deviceId}`));
    if (wanted && devices.length !== wanted.size) throw new AppError("NOT_FOUND", "some of those devices are not active devices of those users");
    const found = new Set(devices.map((d) => d.userId));
    const missing = unique.filter((u) => !found.has(u));
    if (missing.length) throw new AppError("NOT_FOUND", "no active device for some users", { userIds: missing });
    const blockers = (await hooks.blockersOf?.(actor.userId, unique)) ?? new Set<string>();
    const d0 = devices.find((d) => blockers.has(d.userId));
    if (d0) throw new AppError("NOT_FOUND", `device ${d0.userId}.${d0.deviceId} has no key package`, { userId: d0.userId, deviceId: d0.deviceId });
    const claimed = await store.transaction(async (tx) => {
      const rows = await store.takeOnePerDevice(tx, actor.userId, devices);
      const byDevice = new Map(rows.map((r) => [`${r.user_id}.${r.device_id}`, r]));
      const out: ClaimedKeyPackage[] = [];
      for (const d of devices) {
        const r = byDevice.get(`${d.userId}.${d.deviceId}`);
        if (!r) throw new AppError("NOT_FOUND", `device ${d.userId}.${d.deviceId} has no key package`, { userId: d.userId, deviceId: d.deviceId });
        out.push({ userId: d.userId, deviceId: d.deviceId, keyPackage: r.key_package });
      }
      return out;
    });
    for (const s of await statuses(devices)) if (s.isLow) hooks.keyPackagesLow(s.userId, s.deviceId, s);
    return claimed;
  }

  /**
   * Which of these key package refs were handed to `claimer` (or are last-resort packages), with their devices.
   * The commit check uses it: an Add must carry exactly what the committer claimed.
   */
  const claimedBy = (tx: Tx, claimer: string, refs: Uint8Array[]) => store.claimedBy(tx, claimer, refs);

  /**
   * One batch of retention: key packages claimed longer ago than the metadata retention (the claimer's commit had
   * that long to name them), and unclaimed ones past their lifetime (never handed out). Last-resort packages stay:
   * their device replaces them. SKIP LOCKED: a package a claim holds is left for the next run.
   */
  async function purge(now: Date, limit: number): Promise<number> {
    return store.purge(now, new Date(now.getTime() - config.messaging.metadataRetentionSeconds * 1000), limit);
  }

  return { upload, claim, status, claimedBy, purge };
}
