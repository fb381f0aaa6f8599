// The shared test fixture: a real server (and registered devices) per describe block, started in beforeAll and
// closed in afterAll, usable by name in the tests as if it were the started object.
import { afterAll, beforeAll } from "vitest";
import { registerDevice, type TestDevice } from "./accounts.ts";
import { startServer, type TestServer } from "./server.ts";

function late<T extends object>(what: string): { set(v: T): void; get(): T } {
  let value: T | null = null;
  return {
    set: (v) => void (value = v),
    get: () => {
      if (!value) throw new Error(`${what} is started in beforeAll: use it inside a test or hook`);
      return value;
    },
  };
}

/** A server with this configuration for the enclosing describe block (or file). */
export function useServer(env: Record<string, string> = {}): TestServer {
  const server = late<TestServer>("the test server");
  beforeAll(async () => server.set(await startServer(env)));
  afterAll(async () => {
    try {
      await server.get().close();
    } catch {
      // It never started: beforeAll failed and reported why.
    }
  });
  return {
    get url() {
      return server.get().url;
    },
    get app() {
      return server.get().app;
    },
    get db() {
      return server.get().db;
    },
    http: (token) => server.get().http(token),
    close: () => server.get().close(),
  };
}

/** A device registered on `server` before the block's tests run (after the server started). */
export function useDevice(server: TestServer, opts: Parameters<typeof registerDevice>[1] = {}): TestDevice {
  const device = late<TestDevice>("the test device");
  beforeAll(async () => device.set(await registerDevice(server.url, opts)));
  const get = () => device.get();
  return {
    get userId() {
      return get().userId;
    },
    get deviceId() {
      return get().deviceId;
    },
    get token() {
      return get().token;
    },
    get signal() {
      return get().signal;
    },
    get http() {
      return get().http;
    },
    get address() {
      return get().address;
    },
  };
}
