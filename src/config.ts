// The one place that reads the environment. Everything else receives a Config.
import { availableParallelism } from "node:os";
import { z } from "zod";
import { DEFAULT_PUSH_HOSTS, parseGateways } from "./push/config-values.ts";
import { failpointList, type Failpoint } from "./failpoints.ts";
import { rate, rateEnv, rateLimitsOf, type RateLimit, type RateLimits } from "./config-rates.ts";

export { RATE_LIMIT_FAMILIES, type RateLimit, type RateLimitFamily, type RateLimits } from "./config-rates.ts";

const boolish = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

// stun:host[:port], turn:host[:port][?transport=udp|tcp], IPv6 hosts in brackets (RFC 7064 / 7065).
const TURN_URL = /^(stuns?|turns?):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\?transport=(udp|tcp))?$/;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z.object({
  PORT: int(0, 65535).default(8091),
  // Server processes of this node ("auto": one per core). More than one needs PostgreSQL and Redis.
  WORKERS: z.union([z.literal("auto"), int(1, 64)]).default(1),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  // Connections opened at start and kept while idle (at most the pool size): a node's first requests then find them.
  DATABASE_POOL_MIN: int(0, 200).default(0),
  // PostgreSQL that stops answering (packets dropped, not refused) fails requests after these (connect, server, reply).
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 600_000).default(5_000),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 3_600_000).default(20_000),
  DATABASE_QUERY_TIMEOUT_MS: int(100, 3_600_000).default(25_000),
  DATA_DIR: z.string().min(1).default("./data"),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional(),
  BUS_PREFIX: z.string().max(64).default("vignette:"),
  GRAPHIQL: boolish.default(true),
  GRAPHQL_JIT: boolish.default(true),
  // The SDK's operations by hash (src/graphql/persisted-operations.ts); allow-list: nothing else runs.
  PERSISTED_OPERATIONS: z.enum(["allow-list", "accept", "off"]).default("accept"),
  // Prometheus metrics: on a port of their own (not published with the API), and/or on /metrics behind a token.
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").max(256).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  MAX_DEVICES_PER_USER: int(1, 100).default(6),
  DEVICE_LINK_TTL_SECONDS: int(10, 86_400).default(600),
  PREKEY_LOW_WATER_MARK: int(0, 100).default(20),
  KEY_PACKAGE_LOW_WATER_MARK: int(0, 100).default(10),
  MAX_GROUP_MEMBERS: int(2, 100_000).default(1500),
  MAX_GROUP_MESSAGE_BYTES: int(1024, 4 * 1024 * 1024).default(256 * 1024),
  MAX_REQUEST_BYTES: int(1024, 64 * 1024 * 1024).default(8 * 1024 * 1024),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  // Abuse limits (HARDENING.md describes each).
  RATE_LIMITS: boolish.default(true),
  TRUST_PROXY: boolish.default(false),
  ...rateEnv,
  INTROSPECTION: boolish.default(true),
  MAX_QUERY_DEPTH: int(2, 100).default(12),
  MAX_QUERY_COST: int(10, 1_000_000).default(5_000),
  MAX_QUERY_ALIASES: int(0, 1_000).default(15),
  MAX_QUERY_TOKENS: int(100, 100_000).default(2_000),
  MAX_QUERY_DIRECTIVES: int(0, 1_000).default(50),
  WS_AUTH_TIMEOUT_MS: int(100, 60_000).default(3_000),
  MAX_CONNECTIONS_PER_DEVICE: int(1, 1_000).default(5),
  MAX_CONNECTIONS_PER_IP: int(0, 10_000_000).default(500),
  MAX_OPERATIONS_PER_CONNECTION: int(1, 10_000).default(100),
  WS_MAX_BUFFERED_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  MAX_ENVELOPE_BYTES: int(16, 16 * 1024 * 1024).default(256 * 1024),
  QUEUE_RETENTION_SECONDS: int(60, 365 * 86_400).default(30 * 86_400),
  METADATA_RETENTION_SECONDS: int(1, 10 * 365 * 86_400).default(30 * 86_400),
  DELETE_FOR_EVERYONE_WINDOW_SECONDS: int(0, 365 * 86_400).default(48 * 3600),
  SWEEP_INTERVAL_MS: int(100, 3_600_000).default(5_000),
  INBOX_BUFFER_LIMIT: int(10, 1_000_000).default(2_000),
  INBOX_BUFFER_BYTES: int(64 * 1024, 4 * 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  SEND_QUEUE_LIMIT: int(1, 1_000_000).default(2_000),
  // Lost live events and lost revocations (HARDENING.md "Faults"): how often streams and sockets are re-checked.
  INBOX_RECHECK_MS: int(100, 3_600_000).default(3_000),
  SOCKET_REVALIDATE_MS: int(100, 3_600_000).default(5_000),
  FAILPOINTS: failpointList, // test-only fault injection (src/failpoints.ts)
  TYPING_TTL_MS: int(500, 60_000).default(5_000),
  PRESENCE_TTL_MS: int(1_000, 600_000).default(15_000),
  // Push wake-ups (README "Push"): where Web Push may go, the gateways, and how often a device is woken.
  PUSH_ENDPOINT_ALLOWLIST: z
    .string()
    .max(4096)
    .default(DEFAULT_PUSH_HOSTS.join(","))
    .transform((v) => v.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean)),
  PUSH_GATEWAYS: z.string().max(16_384).default("").transform(parseGateways),
  PUSH_CA_FILE: z.string().min(1).optional(),
  PUSH_VAPID_PUBLIC_KEY: z.string().regex(/^[A-Za-z0-9_-]{87}$/, "must be a base64url P-256 public key").optional(),
  PUSH_VAPID_PRIVATE_KEY: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url P-256 private key").optional(),
  PUSH_VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)/, "must be a mailto: or https: URL").default("mailto:push@vignette.invalid"),
  PUSH_COALESCE_SECONDS: int(1, 86_400).default(120),
  PUSH_RATE_LIMIT: rate.prefault("60/1h"),
  PUSH_TTL_SECONDS: int(0, 2_419_200).default(86_400),
  PUSH_URGENT_TTL_SECONDS: int(0, 3_600).default(30),
  PUSH_TIMEOUT_MS: int(100, 120_000).default(10_000),
  PUSH_MAX_ATTEMPTS: int(1, 100).default(10),
  PUSH_RETRY_BASE_MS: int(10, 3_600_000).default(1_000),
  PUSH_POLL_MS: int(10, 60_000).default(1_000),
  PUSH_CONCURRENCY: int(1, 1_000).default(32),
  PUSH_WORKER: boolish.default(true),
  // Attachments (README "Attachments"): ciphertext blobs on the filesystem or an S3-compatible store.
  ATTACHMENTS_DIR: z.string().min(1).optional(),
  MAX_ATTACHMENT_BYTES: int(1024, 2 ** 31 - 1).default(100 * 1024 * 1024),
  ATTACHMENT_DAILY_UPLOADS: int(1, 1_000_000).default(500),
  ATTACHMENT_DAILY_BYTES: z.coerce.number().int().min(1024).max(2 ** 50).default(5 * 1024 ** 3),
  ATTACHMENT_RETENTION_SECONDS: int(1, 10 * 365 * 86_400).default(30 * 86_400),
  ATTACHMENT_UPLOAD_TTL_SECONDS: int(1, 7 * 86_400).default(86_400),
  S3_ENDPOINT: z.url().optional(),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_REGION: z.string().min(1).max(64).default("us-east-1"),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: boolish.default(true),
  S3_PART_BYTES: int(5 * 1024 * 1024, 512 * 1024 * 1024).default(8 * 1024 * 1024),
  // Calls: TURN servers handed out with TURN REST API credentials (coturn use-auth-secret / static-auth-secret).
  TURN_URLS: z
    .string()
    .max(4096)
    .transform((v) => v.split(/[\s,]+/).filter(Boolean))
    .pipe(z.array(z.string().max(256).regex(TURN_URL, "each must be a stun:, stuns:, turn: or turns: URL")).min(1).max(16))
    .optional(),
  TURN_SECRET: z.string().min(16, "must be at least 16 characters").max(512).optional(),
  // Longer than the longest call: coturn checks the expiry again when the client refreshes its allocation.
  TURN_TTL_SECONDS: int(5, 7 * 86_400).default(86_400),
});

/** Every environment variable the service reads (compose.yaml and the README are checked against it). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

export type Config = {
  port: number;
  /** Processes sharing the port (node:cluster); each is a whole server, and they meet on Redis like nodes. */
  workers: number;
  host: string;
  database: { kind: "postgres"; url: string; poolSize: number; poolMin: number; timeouts: { connectMs: number; statementMs: number; queryMs: number } } | { kind: "pglite"; dataDir: string };
  redis: { url: string; prefix: string } | null;
  graphiql: boolean;
  /** Operations run through graphql-jit's compiled executor (compiled once per document). */
  graphqlJit: boolean;
  /** Operations known by hash (the SDK's): allow-list runs only those, accept also any text, off knows none. */
  persistedOperations: "allow-list" | "accept" | "off";
  /** Where /metrics is served: its own port (0 = any free one) and/or the API port behind a bearer token. */
  metrics: { port: number | null; token: string | null };
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
  /** null when RATE_LIMITS=off. */
  rateLimits: RateLimits | null;
  trustProxy: boolean;
  armor: {
    introspection: boolean;
    maxDepth: number;
    maxCost: number;
    maxAliases: number;
    maxTokens: number;
    maxDirectives: number;
  };
  ws: {
    authTimeoutMs: number;
    maxConnectionsPerDevice: number;
    maxConnectionsPerIp: number; // WebSockets per client IP, authenticated or not, per process; 0 = no cap
    maxOperationsPerConnection: number;
    /** A socket with more unsent bytes than this is a slow consumer and is dropped. */
    maxBufferedBytes: number;
    /** How often one query checks that the devices of this node's sockets are still active. */
    revalidateMs: number;
  };
  messaging: {
    /** Largest ciphertext body of one envelope. */
    maxEnvelopeBytes: number;
    /** How long an unacknowledged queue item is kept when the message sets no self-destruct timer. */
    queueRetentionSeconds: number;
    /** How long metadata outlives its use (HARDENING.md "Metadata retention"). */
    metadataRetentionSeconds: number;
    deleteForEveryoneWindowSeconds: number;
    /** How often expired messages and queue items are deleted (reads filter them out in between). */
    sweepIntervalMs: number;
    /** Events a live inbox subscription may hold undelivered before the consumer is dropped as too slow. */
    inboxBufferLimit: number;
    inboxBufferBytes: number; // the bytes they may weigh (roughly: src/live/footprint.ts)
    sendQueueLimit: number; // sends waiting for the database; past it a send fails at once (UNAVAILABLE)
    /** How often open streams look in the database for events whose live publish was lost. */
    recheckMs: number;
  };
  realtime: {
    /** A typing state lapses when not refreshed within this time. */
    typingTtlMs: number;
    /** A connected device's presence entry lives this long unless its node refreshes it (every third of it). */
    presenceTtlMs: number;
  };
  push: PushConfig;
  attachments: {
    /** Largest blob (ciphertext, padding included) one upload may grant. */
    maxBytes: number;
    /** Per device and UTC day: granted uploads and their bytes. */
    dailyUploads: number;
    dailyBytes: number;
    retentionSeconds: number;
    /** How long a granted upload may take to complete before it is deleted. */
    uploadTtlSeconds: number;
    store:
      | { kind: "fs"; dir: string | null }
      | {
          kind: "s3";
          endpoint: string | null;
          bucket: string;
          region: string;
          credentials: { accessKeyId: string; secretAccessKey: string } | null;
          forcePathStyle: boolean;
          partBytes: number;
        };
  };
  /** Faults this node simulates (tests only; empty in production). */
  failpoints: ReadonlySet<Failpoint>;
  /** null when TURN_URLS is not set: turnServers answers an empty list. */
  turn: { urls: string[]; secret: string; ttlSeconds: number } | null;
};

export interface PushConfig {
  /** Hosts a Web Push endpoint may name: exact, `*.domain` for its subdomains, `host:port` to pin a port. */
  endpointAllowlist: string[];
  /** Gateway name -> URL the server POSTs its notifications to. */
  gateways: Record<string, string>;
  /** A PEM file of extra CAs trusted for push services and gateways (a private relay); the system CAs stay. */
  caFile: string | null;
  /** Both halves, or null: then embedded mode generates a pair into DATA_DIR, and PostgreSQL mode has no Web Push. */
  vapid: { publicKey: string; privateKey: string } | null;
  vapidSubject: string;
  coalesceSeconds: number;
  /** Pushes per device (null: none). */
  rateLimit: RateLimit | null;
  ttlSeconds: number;
  urgentTtlSeconds: number;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  pollMs: number;
  concurrency: number;
  /** Whether this node sends pending pushes (false: it only records them, for other nodes to send). */
  worker: boolean;
}

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
  if (!!e.TURN_URLS !== !!e.TURN_SECRET) {
    throw new ConfigError("invalid configuration: TURN_URLS and TURN_SECRET: set both or neither");
  }
  const workers = e.WORKERS === "auto" ? availableParallelism() : e.WORKERS;
  if (workers > 1 && !(e.DATABASE_URL && e.REDIS_URL)) {
    // Embedded storage and the in-process bus live inside one process: other workers could not share them.
    throw new ConfigError("invalid configuration: WORKERS: more than one worker needs DATABASE_URL and REDIS_URL");
  }
  if (e.DATABASE_POOL_MIN > e.DATABASE_POOL_SIZE) {
    throw new ConfigError("invalid configuration: DATABASE_POOL_MIN must not exceed DATABASE_POOL_SIZE");
  }
  if (!e.PUSH_VAPID_PUBLIC_KEY !== !e.PUSH_VAPID_PRIVATE_KEY) {
    throw new ConfigError("invalid configuration: PUSH_VAPID_PUBLIC_KEY and PUSH_VAPID_PRIVATE_KEY go together");
  }
  return {
    port: e.PORT,
    workers,
    host: e.HOST,
    database: e.DATABASE_URL
      ? {
          kind: "postgres",
          url: e.DATABASE_URL,
          poolSize: e.DATABASE_POOL_SIZE,
          poolMin: e.DATABASE_POOL_MIN,
          timeouts: { connectMs: e.DATABASE_CONNECT_TIMEOUT_MS, statementMs: e.DATABASE_STATEMENT_TIMEOUT_MS, queryMs: e.DATABASE_QUERY_TIMEOUT_MS },
        }
      : { kind: "pglite", dataDir: e.DATA_DIR },
    redis: e.REDIS_URL ? { url: e.REDIS_URL, prefix: e.BUS_PREFIX } : null,
    graphiql: e.GRAPHIQL,
    graphqlJit: e.GRAPHQL_JIT,
    persistedOperations: e.PERSISTED_OPERATIONS,
    metrics: { port: e.METRICS_PORT ?? null, token: e.METRICS_TOKEN ?? null },
    logLevel: e.LOG_LEVEL,
    maxDevicesPerUser: e.MAX_DEVICES_PER_USER,
    deviceLinkTtlSeconds: e.DEVICE_LINK_TTL_SECONDS,
    preKeyLowWaterMark: e.PREKEY_LOW_WATER_MARK,
    keyPackageLowWaterMark: e.KEY_PACKAGE_LOW_WATER_MARK,
    maxGroupMembers: e.MAX_GROUP_MEMBERS,
    maxGroupMessageBytes: e.MAX_GROUP_MESSAGE_BYTES,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    rateLimits: e.RATE_LIMITS ? rateLimitsOf(e) : null, // family keyUploads: RATE_LIMIT_KEY_UPLOADS and _IP
    trustProxy: e.TRUST_PROXY,
    armor: {
      introspection: e.INTROSPECTION,
      maxDepth: e.MAX_QUERY_DEPTH,
      maxCost: e.MAX_QUERY_COST,
      maxAliases: e.MAX_QUERY_ALIASES,
      maxTokens: e.MAX_QUERY_TOKENS,
      maxDirectives: e.MAX_QUERY_DIRECTIVES,
    },
    ws: {
      authTimeoutMs: e.WS_AUTH_TIMEOUT_MS,
      maxConnectionsPerDevice: e.MAX_CONNECTIONS_PER_DEVICE,
      maxConnectionsPerIp: e.MAX_CONNECTIONS_PER_IP,
      maxOperationsPerConnection: e.MAX_OPERATIONS_PER_CONNECTION,
      maxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
      revalidateMs: e.SOCKET_REVALIDATE_MS,
    },
    messaging: {
      maxEnvelopeBytes: e.MAX_ENVELOPE_BYTES,
      queueRetentionSeconds: e.QUEUE_RETENTION_SECONDS,
      metadataRetentionSeconds: e.METADATA_RETENTION_SECONDS,
      deleteForEveryoneWindowSeconds: e.DELETE_FOR_EVERYONE_WINDOW_SECONDS,
      sweepIntervalMs: e.SWEEP_INTERVAL_MS,
      inboxBufferLimit: e.INBOX_BUFFER_LIMIT,
      inboxBufferBytes: e.INBOX_BUFFER_BYTES,
      sendQueueLimit: e.SEND_QUEUE_LIMIT,
      recheckMs: e.INBOX_RECHECK_MS,
    },
    realtime: { typingTtlMs: e.TYPING_TTL_MS, presenceTtlMs: e.PRESENCE_TTL_MS },
    push: {
      endpointAllowlist: e.PUSH_ENDPOINT_ALLOWLIST,
      gateways: e.PUSH_GATEWAYS,
      caFile: e.PUSH_CA_FILE ?? null,
      vapid: e.PUSH_VAPID_PUBLIC_KEY ? { publicKey: e.PUSH_VAPID_PUBLIC_KEY, privateKey: e.PUSH_VAPID_PRIVATE_KEY! } : null,
      vapidSubject: e.PUSH_VAPID_SUBJECT,
      coalesceSeconds: e.PUSH_COALESCE_SECONDS,
      rateLimit: e.PUSH_RATE_LIMIT,
      ttlSeconds: e.PUSH_TTL_SECONDS,
      urgentTtlSeconds: e.PUSH_URGENT_TTL_SECONDS,
      timeoutMs: e.PUSH_TIMEOUT_MS,
      maxAttempts: e.PUSH_MAX_ATTEMPTS,
      retryBaseMs: e.PUSH_RETRY_BASE_MS,
      pollMs: e.PUSH_POLL_MS,
      concurrency: e.PUSH_CONCURRENCY,
      worker: e.PUSH_WORKER,
    },
    failpoints: new Set(e.FAILPOINTS),
    turn: e.TURN_URLS && e.TURN_SECRET ? { urls: e.TURN_URLS, secret: e.TURN_SECRET, ttlSeconds: e.TURN_TTL_SECONDS } : null,
    attachments: {
      maxBytes: e.MAX_ATTACHMENT_BYTES,
      dailyUploads: e.ATTACHMENT_DAILY_UPLOADS,
      dailyBytes: e.ATTACHMENT_DAILY_BYTES,
      retentionSeconds: e.ATTACHMENT_RETENTION_SECONDS,
      uploadTtlSeconds: e.ATTACHMENT_UPLOAD_TTL_SECONDS,
      store: attachmentStore(e),
    },
  };
}

/** S3 when a bucket is named, else files: under ATTACHMENTS_DIR, DATA_DIR/attachments, or (in-memory PGlite) a temp dir. */
function attachmentStore(e: z.infer<typeof schema>): Config["attachments"]["store"] {
  if (!e.S3_BUCKET) {
    if (e.S3_ENDPOINT) throw new ConfigError("invalid configuration: S3_ENDPOINT: needs S3_BUCKET");
    const dir = e.ATTACHMENTS_DIR ?? (e.DATA_DIR.startsWith("memory://") ? null : `${e.DATA_DIR}/attachments`);
    return { kind: "fs", dir };
  }
  if (!!e.S3_ACCESS_KEY_ID !== !!e.S3_SECRET_ACCESS_KEY) {
    throw new ConfigError("invalid configuration: S3_ACCESS_KEY_ID: give both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY");
  }
  return {
    kind: "s3",
    endpoint: e.S3_ENDPOINT ?? null,
    bucket: e.S3_BUCKET,
    region: e.S3_REGION,
    credentials: e.S3_ACCESS_KEY_ID ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY! } : null,
    forcePathStyle: e.S3_FORCE_PATH_STYLE,
    partBytes: e.S3_PART_BYTES,
  };
}
