// The pino logger, with tokens, keys and ciphertext redacted from every line.
import { pino, type Logger } from "pino";

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

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT, censor: "[redacted]" }, base: { service: "vignette" } });
}
