/**
 * The spec images the server is about to send, per service, so that the
 * drift watcher (operations/record-drift.ts) does not take the engine's event
 * for our own update as someone else's: the event can come before the
 * deployment has recorded the image it pinned. A mark lives from just before
 * the update is sent until the deployment has recorded it.
 */
import { sameImage } from "../domain/image-ref.js";

export function createOwnChanges() {
  const marks = new Map<string, string[]>();
  return {
    mark(serviceId: string, image: string): void {
      marks.set(serviceId, [...(marks.get(serviceId) ?? []), image]);
    },
    unmark(serviceId: string, image: string): void {
      const left = (marks.get(serviceId) ?? []).filter((m) => m !== image);
      if (left.length) marks.set(serviceId, left);
      else marks.delete(serviceId);
    },
    isOurs(serviceId: string, image: string): boolean {
      return (marks.get(serviceId) ?? []).some((m) => sameImage(m, image));
    },
  };
}

export type OwnChanges = ReturnType<typeof createOwnChanges>;
