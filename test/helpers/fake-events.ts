import type { ServiceEvent, ServiceEventHandlers } from "../../server/engine/swarm-port.js";

/**
 * FakeSwarm's event stream: what the engine's `GET /events` sends for
 * services, delivered on a later turn of the event loop as a stream would.
 * While the stream is down (dropped, or the engine unavailable) events are
 * lost, as they are between a real drop and the reconnection.
 */
export class FakeEventStream {
  private readonly watchers = new Set<ServiceEventHandlers>();
  private down = false;
  /** Every event emitted, delivered or not, in order. */
  readonly emitted: ServiceEvent[] = [];

  private held?: ServiceEvent[];

  /** From now on, events wait (an engine slow to send them) until `deliverHeld()`. */
  holdDeliveries(): void {
    this.held ??= [];
  }

  /** Sends the events held since `holdDeliveries()`, in order, and stops holding. */
  deliverHeld(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.send(event);
  }

  emit(event: ServiceEvent): void {
    this.emitted.push(event);
    if (this.down) return;
    if (this.held) return void this.held.push(event);
    this.send(event);
  }

  private send(event: ServiceEvent): void {
    const watchers = [...this.watchers];
    setImmediate(() => {
      for (const w of watchers) if (this.watchers.has(w)) w.onEvent(event);
    });
  }

  watch(handlers: ServiceEventHandlers, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.watchers.add(handlers);
      if (!this.down) setImmediate(() => this.watchers.has(handlers) && handlers.onConnected?.());
      signal.addEventListener("abort", () => {
        this.watchers.delete(handlers);
        resolve();
      });
    });
  }

  /** The stream goes down (`down`) or comes back: watchers hear of it as of a drop and a reconnection. */
  setDown(down: boolean, reason = "the engine ended the event stream"): void {
    if (this.down === down) return;
    this.down = down;
    for (const w of this.watchers) {
      if (down) w.onDisconnected?.(reason, 0);
      else setImmediate(() => this.watchers.has(w) && w.onConnected?.());
    }
  }

  get watching(): number {
    return this.watchers.size;
  }
}
