// The composition root: config -> store -> bus -> services -> schema -> HTTP/WS. The only module that picks the
// store, bus and presence implementations and wires the domains together through their ports.
import { createYoga } from "graphql-yoga";
import { useGraphQlJit } from "@envelop/graphql-jit";
import type { Bus } from "./live/bus.ts";
import { channels, type ControlEvent } from "./live/channels.ts";
import { createMemoryBus } from "./live/memory-bus.ts";
import { createMemoryPresenceStore, createRedisPresenceStore } from "./live/presence-store.ts";
import { createRedisBus } from "./live/redis-bus.ts";
import { startRounds } from "./live/recheck.ts";
import { startRevalidation } from "./http/revalidate.ts";
import { withFailpoints } from "./failpoints.ts";
import type { Config } from "./config.ts";
import { startHttp, type RunningHttp, type ServerContext } from "./http/server.ts";
import type { Logger } from "./logger.ts";
import type { Context } from "./graphql/builder.ts";
import { armorPlugins } from "./graphql/plugins/armor.ts";
import { metricsPlugins, operationMetrics, subscriptionCounts } from "./metrics/graphql.ts";
import { startMetricsServer } from "./metrics/http.ts";
import { createMetrics, type Metrics } from "./metrics/registry.ts";
import { createErrorMasker } from "./graphql/error-masking.ts";
import { schema } from "./graphql/index.ts";
import { rateLimitCharge, rateLimitPlugin } from "./graphql/plugins/rate-limits.ts";
import { createWsSubscribe } from "./graphql/ws-subscribe.ts";
import { createWsExecute } from "./graphql/ws-execute.ts";
import { loadPersistedOperations } from "./graphql/persisted-operations.ts";
import type { Actor, ServiceDeps, Tx } from "./deps.ts";
import type { Services } from "./graphql/builder.ts";
import type { PresenceStore } from "./live/presence-store.ts";
import { createDevicesService } from "./accounts/service.ts";
import { createAccountsStore } from "./accounts/store.ts";
import { createKeysService } from "./keys/service.ts";
import { createInboxQueue, createInboxService } from "./inbox/service.ts";
import { createInboxStore } from "./inbox/store.ts";
import { createMessagesService } from "./messages/service.ts";
import { createKeyPackagesService } from "./groups/key-packages.ts";
import { createGroupsService } from "./groups/service.ts";
import { createGroupReceipts } from "./groups/receipts.ts";
import { createRealtimeService } from "./realtime/service.ts";
import { createPushService } from "./push/service.ts";
import { resolveVapidKeys } from "./push/vapid.ts";
import { createCallsService } from "./calls/service.ts";
import { createConsentService } from "./consent/service.ts";
import { createMemoryRateLimiter, createRedisRateLimiter } from "./graphql/plugins/rate-limiter.ts";
import { openDatabase, type Database } from "./db/database.ts";
import { migrate } from "./db/migrator.ts";
import { createAttachmentsHttp } from "./attachments/http.ts";
import { createAttachmentsService } from "./attachments/service.ts";
import { startRetention } from "./retention.ts";

export interface App {
  url: string;
  /** The node's Prometheus registry, and where it is served on a port of its own (METRICS_PORT), if anywhere. */
  metrics: Metrics;
  metricsUrl: string | null;
  port: number;
  services: Services;
  /** The store's client, for tests that inspect what is (and is not) stored. */
  prisma: Database["prisma"];
  http: RunningHttp;
  close(): Promise<void>;
}

/**
 * Builds every domain's service and wires them, each built after what it uses (no late binding):
 * - the inbox's queue port comes first: the key directory and key packages tell devices of a low stock through it,
 *   and messages queue envelopes, receipts and deletions through it;
 * - groups take part in conversations (a group id works as a conversation id for history and typing);
 * - the inbox announces what a device acknowledged and messages marks delivery (in the same transaction), and
 *   group events join every inbox stream as a source;
 * - push hears what the inbox queued and which group messages were stored, and wakes the devices that are away.
 */
export function createServices(deps: ServiceDeps, presenceStore: PresenceStore = createMemoryPresenceStore()): Services {
  const report = (what: string) => (err: unknown) => deps.logger.warn({ err: (err as Error).message }, what);
  const inboxStore = createInboxStore(deps);
  const queue = createInboxQueue(deps, inboxStore);
  // The accounts domain owns the device rows; the domains built before it ask it back only when called.
  const accounts = {
    activeDevice: (actor: Actor) => devices.activeDevice(actor),
    activeDevices: (tx: Tx, userIds: string[]) => devices.activeDevices(tx, userIds),
    activeDevicesInOrder: (userIds: string[]) => devices.activeDevicesInOrder(userIds),
  };
  const keys = createKeysService(
    deps,
    { activeDevice: accounts.activeDevice, updateKeys: (actor, k) => devices.setPublishedKeys(actor, k) },
    { preKeysLow: queue.preKeysLow },
  );
  // A linked device publishes key packages only after linking: its account's other devices (which add it to their
  // groups) hear of it again once it can be added. Group co-members hear of device-list changes like 1:1 partners.
  let deviceListChanged = (_userId: string) => {};
  const keyPackages = createKeyPackagesService(deps, accounts, {
    keyPackagesLow: queue.keyPackagesLow,
    firstKeyPackages: (userId) => deviceListChanged(userId),
    blockersOf: (claimer, userIds) => consent.blockersOf(claimer, userIds),
  });
  // Items queued for a device that is away wake it through its push registration; so do group messages.
  const push = createPushService(
    deps,
    { onlineDevices: (d) => presenceStore.onlineDevices(d, Date.now()), connectedHere: (d) => realtime.connectedHere(d) },
    resolveVapidKeys(deps.config, deps.logger),
  );
  queue.onQueued(push.queued);
  const groups = createGroupsService(deps, keyPackages, createGroupReceipts(deps, queue, accounts), accounts, {
    applicationStored: (sender, recipients) =>
      void recipients()
        .then((ds) => push.wake(ds.filter((d) => !sender || d.userId !== sender.userId || d.deviceId !== sender.deviceId).map((d) => ({ ...d, urgent: false }))))
        .catch(report("group wake-up not recorded")),
  });
  // Consent is asked by messages (each batch of sends), realtime (presence, typing) and key packages (invitations);
  // it asks back only when called, after everything is built.
  const consent = createConsentService(deps, {
    userExists: async (userId) => !!(await devices.userById(userId)),
    reportable: (actor, messageId) => messages.reportable(actor, messageId),
    coMembers: (userId) => groups.coMembers(userId),
    peerOf: (userId, conversationId) => messages.peerOf(userId, conversationId),
  });
  const messages = createMessagesService(deps, {
    queue,
    groups,
    consent,
    accounts: {
      activeDevices: accounts.activeDevices,
      readReceiptsEnabled: (userId) => devices.readReceiptsEnabled(userId),
      setReadReceipts: (userId, enabled) => devices.setReadReceipts(userId, enabled),
    },
  });
  deviceListChanged = (userId) =>
    void groups
      .coMembers(userId)
      .then((coMembers) => messages.deviceListChanged(userId, coMembers))
      .catch(report("device list event not queued"));
  const devices = createDevicesService(deps, createAccountsStore(deps), keys, {
    deviceListChanged,
    // A device that is gone leaves its groups and keeps no push address.
    deviceDeactivated: async (userId, deviceId) => {
      await push.forget(userId, deviceId).catch(report("push registration not removed"));
      await groups.deviceDeactivated(userId, deviceId);
    },
  });
  const inbox = createInboxService(deps, {
    store: inboxStore,
    queue,
    keyStatus: (actor) => keys.status(actor),
    acknowledged: messages.envelopesAcknowledged,
    sources: [groups.inboxSource],
  });
  const realtime = createRealtimeService(deps, messages, presenceStore, consent);
  // Calls need nothing else: signaling is messages' live-only sends, and TURN credentials come from config.
  const calls = createCallsService(deps);
  const attachments = createAttachmentsService(deps);
  return { keys, devices, inbox, messages, realtime, groups, keyPackages, calls, push, attachments, consent };
}

export async function startApp(config: Config, logger: Logger): Promise<App> {
  const db: Database = await openDatabase(config.database);
  const { applied } = await migrate(db);
  if (applied.length) logger.info({ applied }, "migrations applied");
  const bus: Bus = withFailpoints(
    config.redis ? createRedisBus(config.redis.url, config.redis.prefix, logger) : createMemoryBus(logger),
    config.failpoints,
  );
  if (config.failpoints.size) logger.warn({ failpoints: [...config.failpoints] }, "FAILPOINTS set: this node simulates faults (tests only)");
  const presenceStore = config.redis
    ? createRedisPresenceStore(config.redis.url, config.redis.prefix)
    : createMemoryPresenceStore();
  const metrics = createMetrics();
  const observeBatch = (batch: string, size: number) => metrics.batchSize.observe({ batch }, size);
  const services = createServices({ prisma: db.prisma, sql: db.sql, bus, config, logger, observeBatch }, presenceStore);
  services.realtime.start();
  services.push.start();
  const stopSweeper = startSweeper(services, config.messaging.sweepIntervalMs, logger);
  const stopRetention = startRetention(services, config.messaging.sweepIntervalMs, logger);

  const limiter = config.redis
    ? createRedisRateLimiter(config.redis.url, config.redis.prefix, logger)
    : createMemoryRateLimiter();
  await limiter.ready();

  const persisted = loadPersistedOperations(config.persistedOperations, schema);
  const maskError = createErrorMasker(logger);
  const contextFor = (initial: Partial<ServerContext>): Context => ({
    services, actor: initial.actor ?? null, clientIp: initial.clientIp ?? "unknown", dropSlowConsumer: initial.dropSlowConsumer,
  });
  const graphqlMetrics = metricsPlugins(metrics);
  // GraphiQL's assets are ~30 MB of strings in the heap once imported: a node that does not serve it never loads them.
  const graphiql = config.graphiql ? await import("./graphql/graphiql.ts") : null;
  const yoga = createYoga<ServerContext, Context>({
    schema,
    plugins: [
      ...persisted.plugins,
      ...graphqlMetrics,
      ...armorPlugins(config.armor),
      ...(config.rateLimits ? [rateLimitPlugin(limiter, config.rateLimits)] : []),
      // Compiled execution: a message costs four or five operations (send, delivery, acks, receipt).
      ...(config.graphqlJit ? [useGraphQlJit()] : []),
    ],
    graphqlEndpoint: "/graphql",
    graphiql: graphiql ? graphiql.graphiqlOptions() : false,
    ...(graphiql ? { renderGraphiQL: graphiql.renderGraphiQL } : {}),
    landingPage: false,
    logging: false,
    maskedErrors: { maskError },
    // The HTTP and WebSocket layers authenticated the caller before parsing (src/http/server.ts).
    context: contextFor,
  });

  const charge = config.rateLimits ? rateLimitCharge(limiter, config.rateLimits) : undefined;
  const wsSubscribe = createWsSubscribe({ charge, maskError, ...subscriptionCounts(metrics) }, config.graphqlJit);
  const wsExecuteKnown = createWsExecute({ charge, maskError, ...operationMetrics(metrics) }, config.graphqlJit);

  const attachments = await createAttachmentsHttp({
    service: services.attachments,
    authenticate: (token) => services.devices.authenticate(token),
    limiter: config.rateLimits ? limiter : null,
    rateLimits: config.rateLimits,
    trustProxy: config.trustProxy,
    maxBytes: config.attachments.maxBytes,
    logger,
  });
  const presenceTrouble = (err: unknown) => logger.warn({ err: (err as Error).message }, "presence update failed");
  const http = await startHttp(
    {
      yoga,
      subscribe: wsSubscribe,
      executeKnown: wsExecuteKnown,
      schema,
      contextFor,
      authenticate: (token) => services.devices.authenticate(token),
      ready: async () => {
        await db.ping();
        await bus.ping();
      },
      logger,
      maxRequestBytes: config.maxRequestBytes,
      metrics: config.metrics.token ? { registry: metrics.registry, token: config.metrics.token } : undefined,
      trustProxy: config.trustProxy,
      ws: config.ws,
      persisted,
      attachments,
      onConnected: (actor) => {
        void services.realtime.deviceConnected(actor).catch(presenceTrouble);
        void services.push.deviceConnected(actor).catch(presenceTrouble);
      },
      onDisconnected: (actor) => void services.realtime.deviceDisconnected(actor).catch(presenceTrouble),
    },
    config.port,
    config.host,
  );
  const stopControl = await bus.subscribe<ControlEvent>(channels.control, (event) => {
    if (event.kind === "deviceRevoked") http.connections.revoke(event);
  });

  // Live events and revocations are best effort: what a lost one should have done is found in the database.
  const lost = (what: string, n: number) => metrics.lostLiveEvents.inc({ what }, n);
  const stopRechecks = startRounds(
    config.messaging.recheckMs,
    { inbox: services.inbox.recheck, group: services.groups.recheck },
    logger,
    { acted: "open streams re-read what a lost live event carried", failed: "stream re-check failed" },
    lost,
  );
  const stopRevalidation = startRevalidation({
    connections: http.connections,
    stillActive: services.devices.stillActive,
    intervalMs: config.ws.revalidateMs,
    logger,
    cut: (n) => lost("revocation", n),
  });

  reportGauges(metrics, { db, http, services });
  bus.onReconnect(() => metrics.redisReconnects.inc({ client: "bus" }));
  const metricsServer =
    config.metrics.port === null ? null : await startMetricsServer(metrics.registry, config.metrics.port, config.host);

  const address = http.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info({ port, database: db.kind, bus: bus.kind }, "vignette listening");

  let closing: Promise<void> | null = null;
  const metricsAddress = metricsServer?.address();
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    metrics,
    metricsUrl:
      typeof metricsAddress === "object" && metricsAddress ? `http://127.0.0.1:${metricsAddress.port}/metrics` : null,
    port,
    services,
    prisma: db.prisma,
    http,
    close() {
      closing ??= (async () => {
        await http.shutdown(config.shutdownGraceMs);
        await stopRechecks();
        await stopRevalidation();
        if (metricsServer) await new Promise((done) => metricsServer.close(done));
        await stopSweeper();
        await stopRetention();
        await services.push.stop();
        await services.attachments.close();
        await services.realtime.stop();
        await stopControl();
        await limiter.close();
        await bus.close();
        await db.close();
      })();
      return closing;
    },
  };
}

/** Deletes self-destructed messages, expired queue items and blobs on an interval; one run at a time (src/retention.ts has the rest). */
function startSweeper(services: Services, intervalMs: number, logger: Logger): () => Promise<void> {
  let running: Promise<void> | null = null;
  const run = () => {
    running ??= (async () => {
      try {
        const messages = await services.messages.sweep();
        const items = await services.inbox.sweep();
        const blobs = await services.attachments.sweep();
        if (messages || items || blobs) logger.debug({ messages, items, blobs }, "expired messages, queue items and blobs deleted");
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "sweep failed");
      } finally {
        running = null;
      }
    })();
  };
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** Gauges read when Prometheus scrapes: sockets held and the database pool (waiting > 0: requests queue for a connection). */
function reportGauges(metrics: Metrics, { db, http, services }: { db: Database; http: RunningHttp; services: Services }) {
  metrics.gauge("vignette_queue_items", "Items waiting in device queues (all nodes: read from the database)", async () =>
    (await services.inbox.depth()).items,
  );
  metrics.gauges("vignette_push", "Devices registered for push, and wake-ups waiting to be sent", "state", () =>
    services.push.counts(),
  );
  metrics.gauges("vignette_attachments", "Attachment blobs stored and being uploaded, and their granted bytes", "state", () =>
    services.attachments.counts(),
  );
  metrics.gauge("vignette_queue_oldest_age_seconds", "Age of the oldest unacknowledged queue item", async () =>
    (await services.inbox.depth()).oldestAgeSeconds,
  );
  metrics.gauge("vignette_ws_connections", "Authenticated WebSocket connections held by this node", () => http.connections.size);
  metrics.gauges("vignette_db_pool_connections", "PostgreSQL pool connections by state", "state", () => ({
    ...db.poolStats(),
  }));
}
