// Baseline: the same bytes between the same number of sockets over a bare `ws` relay in another process.
import WebSocket from "ws";
import { startBaselineServer } from "./baseline-server.ts";
import { summarise, type LatencySummary } from "./stats.ts";

export async function startRawRelay(): Promise<{ url: string; pid: number; stop(): void }> {
  const server = await startBaselineServer(new URL("./raw-relay-server.ts", import.meta.url));
  return { url: `ws://127.0.0.1:${server.port}`, pid: server.pid, stop: server.stop };
}

export function connect(url: string, id: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("error", reject);
    ws.once("open", () => {
      ws.send(JSON.stringify({ hello: id }));
      ws.once("message", () => resolve(ws));
    });
  });
}

/** `pairs` senders each keep `inFlight` messages of `payloadBytes` outstanding to their receiver for `durationMs`. */
export async function rawRelayRun(
  url: string,
  opts: { pairs: number; inFlight: number; payloadBytes: number; durationMs: number },
): Promise<{ perSecond: number; latency: LatencySummary }> {
  const data = "x".repeat(Math.ceil((opts.payloadBytes * 4) / 3));
  const latencies: number[] = [];
  const sockets: WebSocket[] = [];
  let stop = false;
  const pairs = await Promise.all(
    Array.from({ length: opts.pairs }, async (_, i) => {
      const sender = await connect(url, `s${i}`);
      const receiver = await connect(url, `r${i}`);
      sockets.push(sender, receiver);
      return { sender, receiver, i };
    }),
  );
  const start = performance.now();
  await Promise.all(
    pairs.map(
      ({ sender, receiver, i }) =>
        new Promise<void>((done) => {
          let outstanding = 0;
          const send = () => {
            outstanding++;
            sender.send(JSON.stringify({ to: `r${i}`, data, t: performance.now() }));
          };
          receiver.on("message", (raw) => {
            latencies.push(performance.now() - JSON.parse(raw.toString()).t);
            outstanding--;
            if (!stop) send();
            else if (outstanding === 0) done();
          });
          for (let k = 0; k < opts.inFlight; k++) send();
          setTimeout(() => {
            stop = true;
            if (outstanding === 0) done();
          }, opts.durationMs);
        }),
    ),
  );
  const elapsed = performance.now() - start;
  for (const s of sockets) s.close();
  return { perSecond: Math.round((latencies.length / elapsed) * 1000), latency: summarise(latencies) };
}

/**
 * Fan-out over the bare relay: `members` sockets, one sender. Sends `messages` one after another (each once the
 * last member has the previous one) and then keeps `inFlight` outstanding for `durationMs`.
 */
export async function rawFanout(
  url: string,
  opts: { members: number; messages: number; payloadBytes: number },
): Promise<LatencySummary> {
  const data = "x".repeat(Math.ceil((opts.payloadBytes * 4) / 3));
  const sender = await connect(url, "sender");
  const members: WebSocket[] = [];
  for (let i = 0; i < opts.members; i++) members.push(await connect(url, `m${i}`));
  const times: number[] = [];
  for (let k = 0; k < opts.messages; k++) {
    let got = 0;
    const t0 = performance.now();
    await new Promise<void>((done) => {
      const on = () => {
        if (++got === members.length) done();
      };
      for (const m of members) m.once("message", on);
      sender.send(JSON.stringify({ all: true, data, t: t0 }));
    });
    times.push(performance.now() - t0);
  }
  for (const m of [sender, ...members]) m.close();
  return summarise(times);
}
