// Errors: the ones the services raise on purpose (AppError; the GraphQL layer turns them into errors with
// `extensions.code`, anything else is a bug and reaches clients as a masked "Unexpected error"), and the database
// errors recognised as such.

export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "BAD_USER_INPUT"
  | "NOT_FOUND"
  | "CONFLICT"
  | "LIMIT_EXCEEDED"
  | "MISMATCHED_DEVICES"
  | "STALE_DEVICES"
  | "STALE_EPOCH"
  | "RATE_LIMITED"
  | "UNAVAILABLE";

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const badInput = (message: string, details?: Record<string, unknown>) =>
  new AppError("BAD_USER_INPUT", message, details);
export const notFound = (message: string) => new AppError("NOT_FOUND", message);
export const forbidden = (message: string) => new AppError("FORBIDDEN", message);
export const conflict = (message: string, details?: Record<string, unknown>) =>
  new AppError("CONFLICT", message, details);
export const unauthenticated = (message = "a valid device token is required") =>
  new AppError("UNAUTHENTICATED", message);

// Database errors the services turn into user-facing ones, whichever driver adapter raised them.
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; meta?: { driverAdapterError?: { cause?: { kind?: string } } } };
  return e?.code === "P2002" || e?.meta?.driverAdapterError?.cause?.kind === "UniqueConstraintViolation";
}

const UNREACHABLE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections", "TransactionAlreadyClosed"]);
const UNREACHABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"]);
// SQLSTATE classes 08 (connection exception), 53300 (too many connections), 57014 (statement_timeout) and
// 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now).
const UNREACHABLE_SQLSTATE = /^(08...|53300|57014|57P0[123])$/;
// What node-postgres says when its own timeouts (src/db/database.ts) give up on a server that does not answer.
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection (is )?closed|Can't reach database|too many clients|timeout exceeded when trying to connect|Query read timeout|connection timeout/i;

/**
 * True when the database could not be reached or dropped the connection: the operation did not happen (or, for a
 * commit cut off mid-way, its outcome is unknown and an idempotent retry settles it). Clients get UNAVAILABLE.
 */
export function isUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 4) return false;
  const e = err as {
    code?: string;
    kind?: string;
    cause?: unknown;
    originalCode?: string;
    meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string; code?: string } } };
    message?: string;
  };
  const adapter = e.meta?.driverAdapterError?.cause;
  if (adapter?.kind && UNREACHABLE_KINDS.has(adapter.kind)) return true;
  if (adapter?.kind === "postgres" && UNREACHABLE_SQLSTATE.test(adapter.code ?? "")) return true;
  if (e.kind && UNREACHABLE_KINDS.has(e.kind)) return true;
  if (e.code && (UNREACHABLE_CODES.has(e.code) || UNREACHABLE_SQLSTATE.test(e.code))) return true;
  if (typeof e.message === "string" && UNREACHABLE_MESSAGE.test(e.message)) return true;
  return isUnavailable(e.cause, depth + 1);
}
