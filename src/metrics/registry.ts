// The node's Prometheus registry: process metrics, and the gauges and counters other layers report into.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  /** A gauge read at scrape time (connections held, queue depth, pool waits): nothing to keep in step. */
  gauge(name: string, help: string, read: () => number | Promise<number>): void;
  /** Labelled gauges read at scrape time, one value per label set. */
  gauges(name: string, help: string, label: string, read: () => Promise<Record<string, number>> | Record<string, number>): void;
  /** How many items one flush of a batcher wrote together (sends, acks, pre-key claims). */
  batchSize: Histogram<"batch">;
  redisReconnects: Counter<"client">;
  lostLiveEvents: Counter<"what">;
  /** Operations refused or failed, by `extensions.code` (RATE_LIMITED counts the rate-limit refusals). */
  graphqlErrors: Counter<"code">;
  mutations: Counter<"field">;
  subscriptions: Gauge<"field">;
}

export function createMetrics(): Metrics {
  // One registry per server instance: tests run several in one process, and each must count only its own.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    gauge(name, help, read) {
      new Gauge({
        name,
        help,
        registers: [registry],
        async collect() {
          this.set(await read());
        },
      });
    },
    gauges(name, help, label, read) {
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        async collect() {
          this.reset();
          for (const [value, n] of Object.entries(await read())) this.set({ [label]: value }, n);
        },
      });
    },
    batchSize: new Histogram({
      name: "vignette_batch_size",
      help: "Items written by one batched statement",
      labelNames: ["batch"],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    redisReconnects: new Counter({
      name: "vignette_redis_reconnects_total",
      help: "Times the Redis bus lost its connection and got it back (live events in between were re-read from queues)",
      labelNames: ["client"],
      registers: [registry],
    }),
    lostLiveEvents: new Counter({
      name: "vignette_lost_live_events_total",
      help: "Lost live events the database re-checks made up for: inbox and group streams that re-read, devices whose sockets were cut",
      labelNames: ["what"],
      registers: [registry],
    }),
    graphqlErrors: new Counter({
      name: "vignette_graphql_errors_total",
      help: "GraphQL errors returned to clients, by extensions.code",
      labelNames: ["code"],
      registers: [registry],
    }),
    mutations: new Counter({
      name: "vignette_mutations_total",
      help: "Mutation fields executed (sendMessage, ackEnvelopes, ...), successful or not",
      labelNames: ["field"],
      registers: [registry],
    }),
    subscriptions: new Gauge({
      name: "vignette_subscriptions",
      help: "GraphQL subscriptions held open on this node, by root field",
      labelNames: ["field"],
      registers: [registry],
    }),
  };
}
