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
  /** Streams one token (or a session's token) may hold open at once: one reader cannot take every place. */
  maxStreamsPerToken: number;
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
  const byOwner = new Map<string, number>();
  const subscribers = new Set<(events: FeedEvent[]) => void>();
  let stopFeed: (() => void) | undefined;

  const fanOut = (events: FeedEvent[]) => {
    for (const deliver of subscribers) deliver(events);
  };

  return {
    /**
     * Takes one of the `maxStreams` places for `owner` (a token), or refuses: 429 past the token's own
     * `maxStreamsPerToken`, 503 when all are taken. Returns its release (idempotent).
     */
    reserve(owner: string): () => void {
      const own = byOwner.get(owner) ?? 0;
      if (own >= opts.maxStreamsPerToken) {
        throw new AppError("RATE_LIMITED", `this token has ${own} event streams open already (at most ${opts.maxStreamsPerToken}); close one first`);
      }
      if (reserved >= opts.maxStreams) throw new AppError("UNAVAILABLE", `too many event streams are open (${opts.maxStreams}); try again later`);
      reserved++;
      byOwner.set(owner, own + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        reserved--;
        const left = (byOwner.get(owner) ?? 1) - 1;
        if (left > 0) byOwner.set(owner, left);
        else byOwner.delete(owner);
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
