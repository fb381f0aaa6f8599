// Serving /metrics: on a port of its own (kept off the public API), or on the API port behind a bearer token.
import { timingSafeEqual, createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { bearerToken } from "../http/auth.ts";

export async function writeMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType });
    res.end(body);
  } catch {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("metrics unavailable\n");
  }
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time check of `Authorization: Bearer <token>` against the configured metrics token. */
export function metricsTokenMatches(req: IncomingMessage, token: string): boolean {
  const given = bearerToken(req.headers.authorization);
  return given !== null && timingSafeEqual(digest(given), digest(token));
}

export function startMetricsServer(registry: Registry, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    if ((req.url ?? "/").split("?")[0] !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    void writeMetrics(registry, res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
