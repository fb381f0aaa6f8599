// A minimal Chrome DevTools Protocol client for a server started with --inspect: a forced full GC and the server's
// own memory view, so memory per connection can be read without the garbage a connect burst leaves behind.
import WebSocket from "ws";

export interface Inspector {
  call(method: string, params?: object): Promise<{ result?: { result?: { value?: unknown } } }>;
  collectGarbage(): Promise<void>;
  close(): void;
}

/** A free-ish port for `--inspect=127.0.0.1:<port>` (several benches may run one after another). */
export const inspectPort = () => 9300 + Math.floor(Math.random() * 600);

export async function connectInspector(port: number): Promise<Inspector> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((r) => ws.once("open", r));
  let callId = 0;
  const call: Inspector["call"] = (method, params = {}) => {
    const id = ++callId;
    ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => {
      const on = (raw: Buffer) => {
        const msg = JSON.parse(raw.toString());
        if (msg.id === id) (ws.off("message", on), resolve(msg));
      };
      ws.on("message", on);
    });
  };
  return {
    call,
    collectGarbage: async () => void (await call("HeapProfiler.collectGarbage")),
    close: () => ws.close(),
  };
}
