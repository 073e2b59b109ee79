/**
 * The engine's service events (`GET /events?filters={"type":["service"]}`),
 * followed for as long as the caller wants them: a stream that ends, errs or
 * cannot be opened is opened again after a backoff that doubles from 250 ms
 * to 10 s (and starts over once a stream has lasted a while). Reopened with
 * `since` the last event's second, so the engine replays what came during
 * the gap; the watcher also looks at every service again on each connection.
 */
import type Docker from "dockerode";
import { systemClock, type Clock } from "../domain/clock.js";
import type { ServiceEvent, ServiceEventHandlers } from "./swarm-port.js";

export interface EventStreamOptions {
  backoffFirstMs?: number;
  backoffMaxMs?: number;
  /** Whose time the backoff waits and the stream's lifetime are measured on; the system's when absent. */
  clock?: Clock;
}

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** A stream that lasted this long was a connection, not a failing attempt: the next backoff starts over. */
const STABLE_MS = 5_000;
/** No event is this long; a longer line means the stream is not what we think, and it is opened again. */
const MAX_LINE_BYTES = 64 * 1024;
const ACTIONS = new Set(["create", "update", "remove"]);

/** One line of the stream as a ServiceEvent, or undefined for anything else. */
export function parseServiceEvent(line: string): ServiceEvent | undefined {
  let raw: { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> }; time?: unknown; timeNano?: unknown };
  try {
    raw = JSON.parse(line) as typeof raw;
  } catch {
    return undefined;
  }
  if (raw?.Type !== "service" || typeof raw.Action !== "string" || !ACTIONS.has(raw.Action)) return undefined;
  const id = raw.Actor?.ID;
  if (typeof id !== "string" || id === "") return undefined;
  const name = raw.Actor?.Attributes?.name;
  const at = typeof raw.timeNano === "number" ? Math.floor(raw.timeNano / 1e6) : typeof raw.time === "number" ? raw.time * 1000 : Date.now();
  return { action: raw.Action as ServiceEvent["action"], serviceId: id, ...(typeof name === "string" ? { name } : {}), at };
}

/** Reads events off one stream until it ends; resolves with why it ended. */
function readStream(stream: NodeJS.ReadableStream, signal: AbortSignal, onEvent: (e: ServiceEvent) => void): Promise<string> {
  return new Promise((resolve) => {
    let buffered = "";
    const done = (reason: string) => {
      signal.removeEventListener("abort", abort);
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(reason);
    };
    const abort = () => done("stopped");
    signal.addEventListener("abort", abort);
    stream.on("data", (chunk: Buffer | string) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      if (buffered.length > MAX_LINE_BYTES) return done("an event line longer than 64 KiB");
      for (const line of lines) {
        const event = line.trim() ? parseServiceEvent(line) : undefined;
        if (event) onEvent(event);
      }
    });
    stream.on("end", () => done("the engine ended the event stream"));
    stream.on("error", (err: Error) => done(`the event stream failed: ${err.message}`));
  });
}

/** Calls a handler; a watcher's trouble must not end the stream. */
function safely(call: () => void): void {
  try {
    call();
  } catch {
    // The handler logs its own failures; the stream goes on.
  }
}

export async function watchDockerServiceEvents(
  docker: Docker,
  handlers: ServiceEventHandlers,
  signal: AbortSignal,
  options: EventStreamOptions = {},
): Promise<void> {
  const first = options.backoffFirstMs ?? BACKOFF_FIRST_MS;
  const max = options.backoffMaxMs ?? BACKOFF_MAX_MS;
  const clock = options.clock ?? systemClock;
  let waitMs = 0;
  let since: number | undefined;
  while (!signal.aborted) {
    let reason: string;
    const openedAt = clock.now();
    try {
      const query = { filters: { type: ["service"] }, ...(since === undefined ? {} : { since }), abortSignal: signal };
      const stream = await docker.getEvents(query as Parameters<Docker["getEvents"]>[0]);
      safely(() => handlers.onConnected?.());
      reason = await readStream(stream, signal, (event) => {
        since = Math.floor(event.at / 1000);
        safely(() => handlers.onEvent(event));
      });
    } catch (err) {
      reason = `could not open the event stream: ${(err as Error).message}`;
    }
    if (signal.aborted) break;
    waitMs = clock.now() - openedAt >= STABLE_MS ? first : Math.min(max, Math.max(first, waitMs * 2));
    const retryInMs = waitMs;
    safely(() => handlers.onDisconnected?.(reason, retryInMs));
    await clock.sleep(waitMs, signal);
  }
}
