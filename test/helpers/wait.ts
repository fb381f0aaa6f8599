// Bounded waiting for tests: sleep, and polling until a check passes (no test can hang on a condition).

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until check() stops throwing (polling every intervalMs); throws its last error after timeoutMs. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(intervalMs);
    }
  }
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | "">;

/** Waits until check() returns something truthy and returns it; fails after timeoutMs naming `what`. */
export function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<Truthy<T>> {
  return eventually(async () => {
    const v = await check();
    if (!v) throw new Error(`timed out waiting for ${what}`);
    return v as Truthy<T>;
  }, timeoutMs);
}

/** A promise the test opens when it chooses (`p` settles on `open()`), to hold a step at a known point. */
export function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}
