// /metrics in Prometheus text format: served apart from the API (its own port, or a token), and its values move.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openWs, wsRequest } from "../../src/client/transport.ts";
import {
  AckEnvelopesDocument,
  CreateAttachmentUploadDocument,
  CreateDeviceLinkDocument,
  InboxDocument,
} from "../../src/client/generated/graphql.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { usingPostgres } from "../helpers/database.ts";
import { collect } from "../helpers/live.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const TOKEN = "metrics-token-for-tests-0123456789";

/** One sample's value from Prometheus text, 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe("metrics", () => {
  let server: TestServer;
  let alice: TestDevice;
  let bob: TestDevice;
  const scrape = async () => {
    const res = await fetch(server.app.metricsUrl!);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    return res.text();
  };

  beforeAll(async () => {
    server = await startServer({
      METRICS_PORT: "0",
      METRICS_TOKEN: TOKEN,
      RATE_LIMITS: "on",
      RATE_LIMIT_DEVICE_LINKS: "1/10m",
    });
    [alice, bob] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
  });
  afterAll(() => server?.close());

  it("is not part of the public API: on the API port only with its token", async () => {
    const api = server.url.replace(/\/graphql$/, "/metrics");
    expect((await fetch(api)).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: "Bearer not-the-token-at-all" } })).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: `Bearer ${alice.token}` } })).status).toBe(401);
    const ok = await fetch(api, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("vignette_ws_connections");
  });

  it("counts connections, subscriptions, sends, acknowledgements, refusals and operation timings as they happen", async () => {
    const before = await scrape();
    const ws = openWs(server.url, alice.token);
    const inbox = collect(ws, InboxDocument);
    try {
      const sent = await sendOpaque(bob, alice.userId, "counted");
      const items = await inbox.until((xs) => xs.some((x) => x.inbox.__typename === "EnvelopeEvent"));
      const during = await scrape();
      expect(sample(during, "vignette_ws_connections")).toBe(sample(before, "vignette_ws_connections") + 1);
      expect(sample(during, 'vignette_subscriptions{field="inbox"}')).toBe(1);
      // The envelope waits in alice's queue until she acknowledges it.
      expect(sample(during, "vignette_queue_items")).toBe(sample(before, "vignette_queue_items") + 1);
      expect(during).toMatch(/^vignette_queue_oldest_age_seconds \d/m);

      const envelope = items.find((x) => x.inbox.__typename === "EnvelopeEvent")!.inbox as { envelope: { id: string } };
      // Over graphql-ws by hash, as the SDK does: run outside envelop (src/graphql/ws-execute.ts), counted the same.
      await wsRequest(ws, AckEnvelopesDocument, { ids: [envelope.envelope.id] });
      await bob.http.request(CreateDeviceLinkDocument);
      await expect(bob.http.request(CreateDeviceLinkDocument)).rejects.toThrow();
      const bobWs = openWs(server.url, bob.token);
      await expect(wsRequest(bobWs, CreateDeviceLinkDocument)).rejects.toThrow();
      await bobWs.dispose();
      await bob.http.request(CreateAttachmentUploadDocument, { input: { size: 4096 } });
      expect(sent.messageId).toBeTruthy();

      const after = await scrape();
      const moved = (series: string) => sample(after, series) - sample(before, series);
      expect(moved('vignette_mutations_total{field="sendMessage"}')).toBe(1);
      expect(moved('vignette_mutations_total{field="ackEnvelopes"}')).toBe(1);
      // One refusal over HTTP, one over graphql-ws.
      expect(moved('vignette_graphql_errors_total{code="RATE_LIMITED"}')).toBe(2);
      expect(moved('vignette_mutations_total{field="createDeviceLink"}')).toBe(3);
      expect(moved('vignette_attachments{state="uploading"}')).toBe(1);
      // One send and one acknowledgement: each went through its batcher as a batch of one.
      expect(moved('vignette_batch_size_count{batch="sends"}')).toBe(1);
      expect(moved('vignette_batch_size_count{batch="acks"}')).toBe(1);
      expect(moved('vignette_attachments{state="bytes"}')).toBe(4096);
      expect(after).toMatch(/^vignette_push\{state="pending"\} \d/m);
      expect(moved('graphql_envelop_request_duration_count{operationName="SendMessage",operationType="mutation"}')).toBe(1);
      expect(moved('graphql_envelop_request_duration_count{operationName="AckEnvelopes",operationType="mutation"}')).toBe(1);
      expect(moved('graphql_envelop_phase_execute_count{operationName="CreateDeviceLink",operationType="mutation"}')).toBe(3);
      expect(after).toContain("process_cpu_user_seconds_total");
      if (usingPostgres) expect(after).toMatch(/vignette_db_pool_connections\{state="total"\} [1-9]/);
    } finally {
      inbox.stop();
      await ws.dispose();
    }
    await expect.poll(async () => sample(await scrape(), 'vignette_subscriptions{field="inbox"}')).toBe(0);
  });
});
