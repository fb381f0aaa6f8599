// The key_packages table's store: the only code that reads or writes it (SQL and Prisma). The groups domain owns
// the table; key-packages.ts holds the rules (checks, limits, low-stock hints) and asks this module.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { bytes } from "../bytes.ts";
import { longTransaction } from "../db/transactions.ts";

/** A checked key package about to be stored. */
export interface NewKeyPackage {
  ref: Uint8Array<ArrayBuffer>;
  bytes: Uint8Array;
  notAfter: Date;
}

export type KeyPackagesStore = ReturnType<typeof createKeyPackagesStore>;

export function createKeyPackagesStore({ prisma }: Pick<ServiceDeps, "prisma">) {
  /** Interactive transactions with room for a 1,500-member claim (see longTransaction). */
  const transaction = longTransaction(prisma);

  /** Unclaimed ordinary packages of the device, and whether it has a last-resort one. */
  async function stock(device: { userId: string; deviceId: number }) {
    const where = { userId: device.userId, deviceId: device.deviceId, claimedAt: null };
    const [available, lastResort] = await Promise.all([
      prisma.keyPackage.count({ where: { ...where, lastResort: false } }),
      prisma.keyPackage.count({ where: { userId: device.userId, deviceId: device.deviceId, lastResort: true } }),
    ]);
    return { available, lastResort };
  }

  /** The stock of many devices in one query (a claim for a 1,500-member group must not cost 3,000 queries). */
  function stocks(devices: { userId: string; deviceId: number }[]) {
    return prisma.$queryRaw<{ user_id: string; device_id: number; available: number; last: number }[]>`
      SELECT w.user_id::text, w.device_id,
        count(k.id) FILTER (WHERE NOT k.last_resort AND k.claimed_at IS NULL)::int AS available,
        count(k.id) FILTER (WHERE k.last_resort)::int AS last
      FROM unnest(${devices.map((d) => d.userId)}::uuid[], ${devices.map((d) => d.deviceId)}::int[]) AS w(user_id, device_id)
      LEFT JOIN key_packages k ON k.user_id = w.user_id AND k.device_id = w.device_id
      GROUP BY w.user_id, w.device_id`;
  }

  /** How many of these refs are stored already (by anyone). */
  const countRefs = (refs: Uint8Array<ArrayBuffer>[]) => prisma.keyPackage.count({ where: { ref: { in: refs } } });

  /** Whether the device ever published a key package. */
  const hasAny = async (actor: Actor) => (await prisma.keyPackage.count({ where: { userId: actor.userId, deviceId: actor.deviceId } })) > 0;

  /** Stores the packages; a last-resort one replaces the device's previous one. */
  async function insert(actor: Actor, packages: NewKeyPackage[], last: NewKeyPackage | null): Promise<void> {
    await transaction(async (tx) => {
      const row = (c: NewKeyPackage, lastResort: boolean) => ({
        userId: actor.userId,
        deviceId: actor.deviceId,
        ref: c.ref,
        keyPackage: bytes(c.bytes),
        lastResort,
        notAfter: c.notAfter,
      });
      if (packages.length) await tx.keyPackage.createMany({ data: packages.map((c) => row(c, false)) });
      if (last) {
        await tx.keyPackage.deleteMany({ where: { userId: actor.userId, deviceId: actor.deviceId, lastResort: true } });
        await tx.keyPackage.create({ data: row(last, true) });
      }
    });
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

  /** Which of these key package refs were handed to `claimer` (or are last-resort packages), with their devices. */
  async function claimedBy(tx: Tx, claimer: string, refs: Uint8Array[]) {
    if (refs.length === 0) return [];
    return tx.$queryRaw<{ ref: Uint8Array; user_id: string; device_id: number }[]>`
      SELECT ref, user_id::text, device_id FROM key_packages
      WHERE ref = ANY(${refs.map((r) => bytes(r))}::bytea[]) AND (claimed_by = ${claimer}::uuid OR last_resort)`;
  }

  /** Claimed before `claimedBefore` (and not last-resort), or unclaimed past their lifetime: at most limit of each. */
  async function purge(now: Date, claimedBefore: Date, limit: number): Promise<number> {
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

  return { transaction, stock, stocks, countRefs, hasAny, insert, takeOnePerDevice, claimedBy, purge };
}
