// The only door to the Rust host: the generated, typed commands and events.
// Re-exported so views import from one place.
export { commands, events } from "./bindings";
export type * from "./bindings";
import type { ConsoleError } from "./bindings";

export type Outcome<T> = { status: "ok"; data: T } | { status: "error"; error: ConsoleError };

/** Turns a thrown IPC failure (the host itself failed) into a ConsoleError,
 * so callers handle one shape. */
export async function call<T>(p: Promise<Outcome<T>>): Promise<Outcome<T>> {
  try {
    return await p;
  } catch (e) {
    return { status: "error", error: { kind: "protocol", message: `the console's host failed: ${String(e)}` } };
  }
}
