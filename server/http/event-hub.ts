import { AppError } from "../domain/app-error.js";
import type { EventFeed, FeedEvent } from "../store/event-feed.js";

/**
 * The live half of the event streams: the store's feed hands each commit's
 * events here once, and the hub fans them out to the open streams. Each
 * stream has a bounded queue; a client that does not read fast enough to
 * keep it below the bound is dropped (its stream closed), so a slow client
 * costs a bounded amount of memory, never more. It loses nothing by it: it
 * reconnects with Last-Event-ID and reads the rest from the record.
 */
export interface EventHubOptions {
  feed: Pick<EventFeed, "subscribe">;
  /** Streams open at once; the next one is answered 503. */
  maxStreams: number;
  /** Events a stream may have waiting to be written before its client is dropped. */
  bufferEvents: number;
}

export type NextEvents = FeedEvent[] | "idle" | "overflow" | "closed";

export interface Subscription {
  /** The events committed since the last call, or what happened instead: nothing for `idleMs`, a full buffer, a close. */
  next(idleMs: number): Promise<NextEvents>;
  close(): void;
}

export type EventHub = ReturnType<typeof createEventHub>;

export function createEventHub(opts: EventHubOptions) {
  let reserved = 0;
  const subscribers = new Set<(events: FeedEvent[]) => void>();
  let stopFeed: (() => void) | undefined;

  const fanOut = (events: FeedEvent[]) => {
    for (const deliver of subscribers) deliver(events);
  };

  return {
    /** Takes one of the `maxStreams` places, or refuses with 503; returns its release (idempotent). */
    reserve(): () => void {
      if (reserved >= opts.maxStreams) throw new AppError("UNAVAILABLE", `too many event streams are open (${opts.maxStreams}); try again later`);
      reserved++;
      let released = false;
      return () => {
        if (!released) reserved--;
        released = true;
      };
    },

    /** Streams open now. */
    get open(): number {
      return reserved;
    },

    /** Streams subscribed to the feed now: each hears every event committed from here on. */
    get live(): number {
      return subscribers.size;
    },

    /**
     * The events committed from now on (of one deployment, when given). Synchronous: nothing committed after the call
     * is missed. `onOverflow` runs at once when the buffer overflows, to drop a client whose writes hang.
     */
    subscribe(deploymentId: string | undefined, onOverflow: () => void): Subscription {
      let queue: FeedEvent[] = [];
      let state: "open" | "overflow" | "closed" = "open";
      let wake: (() => void) | undefined;
      const deliver = (events: FeedEvent[]) => {
        const mine = deploymentId ? events.filter((e) => e.deploymentId === deploymentId) : events;
        if (mine.length === 0 || state !== "open") return;
        if (queue.length + mine.length > opts.bufferEvents) {
          state = "overflow";
          queue = [];
          unsubscribe();
          onOverflow();
        } else queue.push(...mine);
        wake?.();
      };
      const unsubscribe = () => {
        subscribers.delete(deliver);
        if (subscribers.size === 0) {
          stopFeed?.();
          stopFeed = undefined;
        }
      };
      subscribers.add(deliver);
      stopFeed ??= opts.feed.subscribe(fanOut);
      return {
        async next(idleMs: number): Promise<NextEvents> {
          if (state === "open" && queue.length === 0) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, idleMs);
              timer.unref();
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
          }
          if (state !== "open") return state;
          if (queue.length === 0) return "idle";
          const events = queue;
          queue = [];
          return events;
        },
        close(): void {
          if (state === "open") unsubscribe();
          state = "closed";
          wake?.();
        },
      };
    },
  };
}
