// Interactive transactions for the long operations (large commits and claims).
import type { ServiceDeps, Tx } from "../deps.ts";

/**
 * Interactive transactions with room for a 1,500-member commit or claim on a busy machine: even the store's default
 * (30 s, src/db/database.ts) can turn such a slow but valid commit into an internal error.
 */
export function longTransaction(prisma: ServiceDeps["prisma"]) {
  return <T>(fn: (tx: Tx) => Promise<T>) => prisma.$transaction(fn, { maxWait: 15_000, timeout: 60_000 });
}
