// The one place that reads the environment. Everything else receives a Config.
import { z } from "zod";

const boolish = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z.object({
  PORT: int(0, 65535).default(8091),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  DATA_DIR: z.string().min(1).default("./data"),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional(),
  BUS_PREFIX: z.string().max(64).default("vignette:"),
  GRAPHIQL: boolish.default(true),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  MAX_DEVICES_PER_USER: int(1, 100).default(6),
  DEVICE_LINK_TTL_SECONDS: int(10, 86_400).default(600),
  PREKEY_LOW_WATER_MARK: int(0, 100).default(20),
  KEY_PACKAGE_LOW_WATER_MARK: int(0, 100).default(10),
  MAX_GROUP_MEMBERS: int(2, 100_000).default(1500),
  MAX_GROUP_MESSAGE_BYTES: int(1024, 4 * 1024 * 1024).default(256 * 1024),
  MAX_REQUEST_BYTES: int(1024, 64 * 1024 * 1024).default(8 * 1024 * 1024),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  MAX_ENVELOPE_BYTES: int(16, 16 * 1024 * 1024).default(256 * 1024),
  QUEUE_RETENTION_SECONDS: int(60, 365 * 86_400).default(30 * 86_400),
  DELETE_FOR_EVERYONE_WINDOW_SECONDS: int(0, 365 * 86_400).default(48 * 3600),
  SWEEP_INTERVAL_MS: int(100, 3_600_000).default(5_000),
  INBOX_BUFFER_LIMIT: int(10, 1_000_000).default(2_000),
  TYPING_TTL_MS: int(500, 60_000).default(5_000),
  PRESENCE_TTL_MS: int(1_000, 600_000).default(15_000),
});

export type Config = {
  port: number;
  host: string;
  database: { kind: "postgres"; url: string; poolSize: number } | { kind: "pglite"; dataDir: string };
  redis: { url: string; prefix: string } | null;
  graphiql: boolean;
  logLevel: z.infer<typeof schema>["LOG_LEVEL"];
  maxDevicesPerUser: number;
  deviceLinkTtlSeconds: number;
  preKeyLowWaterMark: number;
  keyPackageLowWaterMark: number;
  /** Users per MLS group (each with all their devices). */
  maxGroupMembers: number;
  maxGroupMessageBytes: number;
  maxRequestBytes: number;
  shutdownGraceMs: number;
  messaging: {
    /** Largest ciphertext body of one envelope. */
    maxEnvelopeBytes: number;
    /** How long an unacknowledged queue item is kept when the message sets no self-destruct timer. */
    queueRetentionSeconds: number;
    deleteForEveryoneWindowSeconds: number;
    /** How often expired messages and queue items are deleted (reads filter them out in between). */
    sweepIntervalMs: number;
    /** Events a live inbox subscription may hold undelivered before the consumer is dropped as too slow. */
    inboxBufferLimit: number;
  };
  realtime: {
    /** A typing state lapses when not refreshed within this time. */
    typingTtlMs: number;
    /** A connected device's presence entry lives this long unless its node refreshes it (every third of it). */
    presenceTtlMs: number;
  };
};

export class ConfigError extends Error {}

/** Validates the environment; a wrong value throws a ConfigError that names the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    database: e.DATABASE_URL
      ? { kind: "postgres", url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE }
      : { kind: "pglite", dataDir: e.DATA_DIR },
    redis: e.REDIS_URL ? { url: e.REDIS_URL, prefix: e.BUS_PREFIX } : null,
    graphiql: e.GRAPHIQL,
    logLevel: e.LOG_LEVEL,
    maxDevicesPerUser: e.MAX_DEVICES_PER_USER,
    deviceLinkTtlSeconds: e.DEVICE_LINK_TTL_SECONDS,
    preKeyLowWaterMark: e.PREKEY_LOW_WATER_MARK,
    keyPackageLowWaterMark: e.KEY_PACKAGE_LOW_WATER_MARK,
    maxGroupMembers: e.MAX_GROUP_MEMBERS,
    maxGroupMessageBytes: e.MAX_GROUP_MESSAGE_BYTES,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    messaging: {
      maxEnvelopeBytes: e.MAX_ENVELOPE_BYTES,
      queueRetentionSeconds: e.QUEUE_RETENTION_SECONDS,
      deleteForEveryoneWindowSeconds: e.DELETE_FOR_EVERYONE_WINDOW_SECONDS,
      sweepIntervalMs: e.SWEEP_INTERVAL_MS,
      inboxBufferLimit: e.INBOX_BUFFER_LIMIT,
    },
    realtime: { typingTtlMs: e.TYPING_TTL_MS, presenceTtlMs: e.PRESENCE_TTL_MS },
  };
}
