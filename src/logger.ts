// The pino logger, with tokens, keys and ciphertext redacted from every line.
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

// Tokens, keys and ciphertext must never reach a log line, whatever a caller passes in.
const REDACT = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "body",
  "*.body",
  "keys",
  "*.keys",
  "message",
  "variables",
  "*.variables",
];

// Long runs of base64/hex (ciphertext, keys, tokens: 40 characters and more, so UUIDs stay readable) inside free
// text, where the path list cannot reach: an unexpected error's message can quote the values it failed on (Prisma's
// do).
const SECRET_RUN = /[A-Za-z0-9+/_-]{40,}={0,2}/g;

/** Free text with anything that looks like key material or a token replaced. */
export const scrubText = (text: string | undefined) => text?.replace(SECRET_RUN, "[redacted]");

/**
 * An error as a log field: name, code, the message scrubbed and the stack's frames (the stack's first lines repeat
 * the message); its other properties (a driver's query parameters) are not logged.
 */
export function loggableError(e: unknown) {
  if (!(e instanceof Error)) return { value: scrubText(String(e)) };
  const code = (e as { code?: unknown }).code;
  const frames = (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l));
  return { name: e.name, ...(typeof code === "string" ? { code } : {}), message: scrubText(e.message), stack: frames.join("\n") };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: "[redacted]" }, base: { service: "vignette" } };
  return destination ? pino(options, destination) : pino(options);
}
