// Revocation reaches other nodes as one best-effort live event; if it is lost, a deactivated device's socket would
// stay open. So every node asks the database on a timer, in one statement for all its sockets' devices, which of
// them are still active, and closes the sockets of the others as a revocation would.
import type { Actor } from "../deps.ts";
import type { Logger } from "../logger.ts";
import { actorKey, chunks, startRounds } from "../live/recheck.ts";
import type { ConnectionRegistry } from "./connections.ts";

export interface Revalidation {
  connections: Pick<ConnectionRegistry, "devices" | "revoke">;
  stillActive(devices: Actor[]): Promise<Actor[]>;
  intervalMs: number;
  logger: Logger;
  /** Told how many devices each look cut. */
  cut?: (n: number) => void;
}

/** One look: closes the sockets of every device here that is no longer active; returns how many devices. */
export async function revalidateSockets({ connections, stillActive }: Pick<Revalidation, "connections" | "stillActive">): Promise<number> {
  let revoked = 0;
  for (const part of chunks([...connections.devices()])) {
    const active = new Set((await stillActive(part)).map(actorKey));
    for (const d of part) {
      if (active.has(actorKey(d))) continue;
      connections.revoke(d);
      revoked++;
    }
  }
  return revoked;
}

export function startRevalidation(r: Revalidation): () => Promise<void> {
  return startRounds(
    r.intervalMs,
    { devices: () => revalidateSockets(r) },
    r.logger,
    { acted: "sockets of deactivated devices closed by re-validation (their revocation event was lost)", failed: "socket re-validation failed" },
    (_, n) => r.cut?.(n),
  );
}
