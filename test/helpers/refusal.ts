// What a pure rule refused with: the AppError's code and details, or null when it accepted.
import { AppError } from "../../src/errors.ts";

export function refusal(fn: () => unknown): { code: string; details: Record<string, unknown>; message: string } | null {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { code: err.code, details: err.details, message: err.message };
  }
  return null;
}
