// The accounts domain's retention of device link tokens. Linking itself (create, spend) is still written in
// service.ts; both touch device_links only.
import type { ServiceDeps } from "../deps.ts";

export function createAccountsStore({ prisma }: Pick<ServiceDeps, "prisma">) {
  /**
   * At most `limit` link tokens that can never link again: spent, or past their lifetime. A spent link's hash is
   * kept by nothing (linkDevice spends it and adds the device in one transaction). SKIP LOCKED: a link being spent
   * right now is left for the next run.
   */
  async function purgeLinks(now: Date, limit: number): Promise<number> {
    return prisma.$executeRaw`
      DELETE FROM device_links WHERE token_hash IN (
        SELECT token_hash FROM device_links WHERE expires_at <= ${now} OR used_at IS NOT NULL
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)`;
  }

  return { purgeLinks };
}
