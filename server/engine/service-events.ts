/**
 * One subscription to the engine's service events, shared by whoever wants
 * them (the service index, the drift watcher): opened with the first
 * subscriber, closed with the last. A subscriber that comes while the stream
 * is connected hears `onConnected` at once, as it would from its own stream.
 *
 * Each of them lists every service when the stream connects, in the same
 * turn: `listServices` makes the lists asked in one turn one request. It
 * starts after the turn, so no answer is older than a question it answers.
 */
import type { ServiceEvent, ServiceEventHandlers, SwarmPort, SwarmService } from "./swarm-port.js";

export interface ServiceEventSource {
  /** Follows the shared stream until `signal` aborts; the same contract as SwarmPort.watchServiceEvents. */
  watchServiceEvents(handlers: ServiceEventHandlers, signal: AbortSignal): Promise<void>;
  /** SwarmPort.listServices, one request for the lists asked in the same turn. */
  listServices(): Promise<SwarmService[]>;
}

export function createServiceEvents(swarm: Pick<SwarmPort, "watchServiceEvents" | "listServices">): ServiceEventSource {
  /** The list the questions of this turn wait for; gone once its request is sent. */
  let nextList: Promise<SwarmService[]> | undefined;
  const subscribers = new Set<ServiceEventHandlers>();
  let connected = false;
  let stream: { abort: AbortController; done: Promise<void> } | undefined;

  const each = (call: (h: ServiceEventHandlers) => void) => {
    for (const h of [...subscribers]) {
      try {
        call(h);
      } catch {
        // A subscriber logs its own trouble; the others still hear the event.
      }
    }
  };
  const shared: ServiceEventHandlers = {
    onEvent: (event: ServiceEvent) => each((h) => h.onEvent(event)),
    onConnected: () => {
      connected = true;
      each((h) => h.onConnected?.());
    },
    onDisconnected: (reason, retryInMs) => {
      connected = false;
      each((h) => h.onDisconnected?.(reason, retryInMs));
    },
  };

  return {
    listServices() {
      nextList ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        nextList = undefined;
        return swarm.listServices();
      });
      return nextList;
    },
    watchServiceEvents(handlers, signal) {
      if (signal.aborted) return Promise.resolve();
      subscribers.add(handlers);
      if (!stream) {
        const abort = new AbortController();
        stream = { abort, done: swarm.watchServiceEvents(shared, abort.signal) };
      } else if (connected) {
        queueMicrotask(() => subscribers.has(handlers) && handlers.onConnected?.());
      }
      return new Promise<void>((resolve) => {
        signal.addEventListener("abort", () => {
          subscribers.delete(handlers);
          const open = stream;
          if (subscribers.size === 0 && open) {
            stream = undefined;
            connected = false;
            open.abort.abort();
            void open.done.then(resolve);
          } else resolve();
        });
      });
    },
  };
}
