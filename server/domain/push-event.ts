import type { ImageRef } from "./image-ref.js";

/**
 * What every registry adapter turns its payload into, and what the poller and
 * manual deploys produce too: one tagged image was pushed. The digest is only
 * a hint; the engine resolves the tag itself before deploying.
 */
export interface PushEvent {
  /** Stable id of this delivery, for idempotency: the registry's event id, or a key derived from the payload. */
  eventKey: string;
  image: ImageRef & { digest?: undefined };
  /** Digest the payload claims the tag points to, when it says. */
  digestHint?: string;
  /** Docker Hub's legacy `callback_url`, when the payload carries one. */
  callbackUrl?: string;
  /** Who pushed, as the payload says (informational). */
  pusher?: string;
}

/** A payload element the adapter acknowledged without acting on it. */
export interface IgnoredEvent {
  reason: string;
  [key: string]: unknown;
}

export interface ParsedWebhook {
  events: PushEvent[];
  ignored: IgnoredEvent[];
}
