// What the SDK throws at the app: one error type with the server's extensions.code when the server refused, or an
// SDK code (NO_ACCOUNT, ACCOUNT_EXISTS, NOT_FOUND, UNREACHABLE, NOT_STARTED, DEVICE_DEACTIVATED).
import { GraphQLRequestError } from "./transport.ts";

export class VignetteError extends Error {
  override name = "VignetteError";
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Server refusals become VignetteErrors with the server's code; network failures say so plainly. */
export async function wrap<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VignetteError) throw err;
    if (err instanceof GraphQLRequestError) throw new VignetteError(err.message, err.code);
    const e = err as Error & { cause?: { code?: string } };
    if (e instanceof TypeError && /fetch failed/.test(e.message)) {
      throw new VignetteError(`cannot reach the server (${e.cause?.code ?? "network error"})`, "UNREACHABLE");
    }
    throw err;
  }
}
