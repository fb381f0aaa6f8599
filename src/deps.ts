// What every service is built from (ServiceDeps), the authenticated caller (Actor), and the transaction type.
import type { Bus } from "./live/bus.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";
import type { PrismaClient, Sql } from "./db/database.ts";

/** What every service is built from; the composition root (src/app.ts) fills it in. */
export interface ServiceDeps {
  prisma: PrismaClient;
  sql: Sql;
  bus: Bus;
  config: Config;
  logger: Logger;
  /** Where batchers report their batch sizes (the metrics registry); absent in tools that need none. */
  observeBatch?: (batch: string, size: number) => void;
}

/** The authenticated caller. It only ever comes from a verified device token. */
export interface Actor {
  userId: string;
  deviceId: number;
}

export type Tx = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];
