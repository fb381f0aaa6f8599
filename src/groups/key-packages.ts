// MLS key packages: devices publish them (checked with ts-mls first), others claim one per device to add a user to a
// group. A claimed key package is never handed out again (the last-resort one excepted); it is kept, marked with the
// claimer, so that the commit using it can be checked against what was claimed, for the metadata retention.
import { AppError, badInput, notFound } from "../errors.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { bytes } from "../bytes.ts";
import { longTransaction } from "../db/transactions.ts";
import { checkKeyPackage, type CheckedKeyPackage } from "./mls-framing.ts";

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

export function createKeyPackagesService(
  deps: ServiceDeps,
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
  const { prisma, config } = deps;
  const inTx = longTransaction(prisma);

  async function status(device: { userId: string; deviceId: number }): Promise<KeyPackageStatus> {
    const where = { userId: device.userId, deviceId: device.deviceId, claimedAt: null };
    const [available, lastResort] = await Promise.all([
      prisma.keyPackage.count({ where: { ...where, lastResort: false } }),
      prisma.keyPackage.count({ where: { userId: device.userId, deviceId: device.deviceId, lastResort: true } }),
    ]);
    const lowWaterMark = config.keyPackageLowWaterMark;
    return { available, hasLastResort: lastResort > 0, lowWaterMark, isLow: available < lowWaterMark };
  }

  /** The stock of many devices in one query (a claim for a 1,500-member group must not cost 3,000 queries). */
  async function statuses(devices: { userId: string; deviceId: number }[]) {
    const rows = await prisma.$queryRaw<{ user_id: string; device_id: number; available: number; last: number }[]>`
      SELECT w.user_id::text, w.device_id,
        count(k.id) FILTER (WHERE NOT k.last_resort AND k.claimed_at IS NULL)::int AS available,
        count(k.id) FILTER (WHERE k.last_resort)::int AS last
      FROM unnest(${devices.map((d) => d.userId)}::uuid[], ${devices.map((d) => d.deviceId)}::int[]) AS w(user_id, device_id)
      LEFT JOIN key_packages k ON k.user_id = w.user_id AND k.device_id = w.device_id
      GROUP BY w.user_id, w.device_id`;
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
    const device = await prisma.device.findFirst({ where: { userId: actor.userId, deviceId: actor.deviceId, active: true } });
    if (!device) throw notFound("device not found");
    const checked: (CheckedKeyPackage & { bytes: Uint8Array })[] = [];
    for (const [i, kp] of keyPackages.entries()) {
      checked.push({ ...(await checkKeyPackage(kp, actor, `keyPackages[${i}]`)), bytes: kp });
    }
    const last = lastResort ? { ...(await checkKeyPackage(lastResort, actor, "lastResort")), bytes: lastResort } : null;
    const refs = new Set([...checked, ...(last ? [last] : [])].map((c) => Buffer.from(c.ref).toString("hex")));
    if (refs.size !== checked.length + (last ? 1 : 0)) throw badInput("the same key package appears twice");
    const existing = await prisma.keyPackage.count({ where: { ref: { in: [...checked, ...(last ? [last] : [])].map((c) => c.ref) } } });
    if (existing > 0) throw badInput("a key package in this upload was uploaded before");
    const first = (await prisma.keyPackage.count({ where: { userId: actor.userId, deviceId: actor.deviceId } })) === 0;
    await inTx(async (tx) => {
      const row = (c: (typeof checked)[number], lastResort: boolean) => ({
        userId: actor.userId,
        deviceId: actor.deviceId,
        ref: c.ref,
        keyPackage: bytes(c.bytes),
        lastResort,
        notAfter: c.notAfter,
      });
      if (checked.length) await tx.keyPackage.createMany({ data: checked.map((c) => row(c, false)) });
      if (last) {
        await tx.keyPackage.deleteMany({ where: { userId: actor.userId, deviceId: actor.deviceId, lastResort: true } });
        await tx.keyPackage.create({ data: row(last, true) });
      }
    });
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
    const devices = (
      await prisma.device.findMany({
        where: { userId: { in: unique }, active: true },
        select: { userId: true, deviceId: true },
        orderBy: [{ userId: "asc" }, { deviceId: "asc" }],
      })
    ).filter((d) => !wanted || wanted.has(`${d.userId}.${d.deviceId}`));
    if (wanted && devices.length !== wanted.size) throw new AppError("NOT_FOUND", "some of those devices are not active devices of those users");
    const found = new Set(devices.map((d) => d.userId));
    const missing = unique.filter((u) => !found.has(u));
    if (missing.length) throw new AppError("NOT_FOUND", "no active device for some users", { userIds: missing });
    const blockers = (await hooks.blockersOf?.(actor.userId, unique)) ?? new Set<string>();
    const d0 = devices.find((d) => blockers.has(d.userId));
    if (d0) throw new AppError("NOT_FOUND", `device ${d0.userId}.${d0.deviceId} has no key package`, { userId: d0.userId, deviceId: d0.deviceId });
    const claimed = await inTx(async (tx) => {
      const rows = await takeOnePerDevice(tx, actor.userId, devices);
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

  /** One statement for all devices: a group of 1,500 is claimed without 1,500 round trips. */
  async function takeOnePerDevice(tx: Tx, claimer: string, devices: { userId: string; deviceId: number }[]) {
    const users = devices.map((d) => d.userId);
    const ids = devices.map((d) => d.deviceId);
    const taken = await tx.$queryRaw<{ user_id: string; device_id: number; key_package: Uint8Array }[]>`
      WITH wanted AS (SELECT * FROM unnest(${users}::uuid[], ${ids}::int[]) AS w(user_id, device_id)),
      picked AS (
        SELECT k.id FROM wanted w CROSS JOIN LATERAL (
          SELECT id FROM key_packages
          WHERE user_id = w.user_id AND device_id = w.device_id AND claimed_at IS NULL AND NOT last_resort
            AND not_after > now()
          ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) k)
      UPDATE key_packages SET claimed_by = ${claimer}::uuid, claimed_at = now()
      WHERE id IN (SELECT id FROM picked)
      RETURNING user_id::text, device_id, key_package`;
    const have = new Set(taken.map((t) => `${t.user_id}.${t.device_id}`));
    const lacking = devices.filter((d) => !have.has(`${d.userId}.${d.deviceId}`));
    if (lacking.length === 0) return taken;
    // Last-resort packages are not consumed; the claimer is recorded in a claim row of their own so the commit
    // check can find "claimed by this user" for them too.
    const last = await tx.$queryRaw<{ user_id: string; device_id: number; key_package: Uint8Array; ref: Uint8Array; not_after: Date }[]>`
      SELECT user_id::text, device_id, key_package, ref, not_after FROM key_packages
      WHERE last_resort AND (user_id, device_id) IN (
        SELECT * FROM unnest(${lacking.map((d) => d.userId)}::uuid[], ${lacking.map((d) => d.deviceId)}::int[]))`;
    return [...taken, ...last];
  }

  /**
   * Which of these key package refs were handed to `claimer` (or are last-resort packages), with their devices.
   * The commit check uses it: an Add must carry exactly what the committer claimed.
   */
  async function claimedBy(tx: Tx, claimer: string, refs: Uint8Array[]) {
    if (refs.length === 0) return [];
    return tx.$queryRaw<{ ref: Uint8Array; user_id: string; device_id: number }[]>`
      SELECT ref, user_id::text, device_id FROM key_packages
      WHERE ref = ANY(${refs.map((r) => bytes(r))}::bytea[]) AND (claimed_by = ${claimer}::uuid OR last_resort)`;
  }

  /**
   * One batch of retention: key packages claimed longer ago than the metadata retention (the claimer's commit had
   * that long to name them), and unclaimed ones past their lifetime (never handed out). Last-resort packages stay:
   * their device replaces them. SKIP LOCKED: a package a claim holds is left for the next run.
   */
  async function purge(now: Date, limit: number): Promise<number> {
    const claimedBefore = new Date(now.getTime() - config.messaging.metadataRetentionSeconds * 1000);
    return prisma.$executeRaw`
      WITH spent AS (
        SELECT id FROM key_packages WHERE claimed_at IS NOT NULL AND NOT last_resort AND claimed_at < ${claimedBefore}
        ORDER BY claimed_at LIMIT ${limit} FOR UPDATE SKIP LOCKED
      ), lapsed AS (
        SELECT id FROM key_packages WHERE claimed_at IS NULL AND NOT last_resort AND not_after <= ${now}
        ORDER BY not_after LIMIT ${limit} FOR UPDATE SKIP LOCKED
      )
      DELETE FROM key_packages WHERE id IN (SELECT id FROM spent) OR id IN (SELECT id FROM lapsed)`;
  }

  return { upload, claim, status, claimedBy, purge };
}
