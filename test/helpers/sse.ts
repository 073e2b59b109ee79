import { createParser, type EventSourceMessage } from "eventsource-parser";

/** Reads a Server-Sent Events response one event at a time; `undefined` once the stream ended. */
export function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const queue: EventSourceMessage[] = [];
  let comments = 0;
  let ended = false;
  let text = "";
  const parser = createParser({ onEvent: (m) => queue.push(m), onComment: () => comments++ });

  // A read that timed out stays pending: the next pull waits on it rather than losing its chunk.
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  async function pull(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms; so far: ${text.slice(-500)}`)), timeoutMs);
    });
    try {
      pending ??= reader.read();
      const { done, value } = await Promise.race([pending, timeout]);
      pending = undefined;
      if (done) ended = true;
      else {
        const chunk = decoder.decode(value, { stream: true });
        text += chunk;
        parser.feed(chunk);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async next(timeoutMs = 5000): Promise<EventSourceMessage | undefined> {
      while (queue.length === 0 && !ended) await pull(timeoutMs);
      return queue.shift();
    },
    /** Events until `stop` says so (that one included), or until the stream ends. */
    async until(stop: (m: EventSourceMessage) => boolean, timeoutMs = 5000): Promise<EventSourceMessage[]> {
      const seen: EventSourceMessage[] = [];
      for (;;) {
        const m = await this.next(timeoutMs);
        if (!m) return seen;
        seen.push(m);
        if (stop(m)) return seen;
      }
    },
    /** Every event to the end of the stream. */
    async rest(timeoutMs = 5000): Promise<EventSourceMessage[]> {
      return this.until(() => false, timeoutMs);
    },
    /** Waits until the stream has sent `n` comment lines (heartbeats). */
    async comment(n = 1, timeoutMs = 5000): Promise<void> {
      while (comments < n && !ended) await pull(timeoutMs);
    },
    get comments() {
      return comments;
    },
    get ended() {
      return ended;
    },
    get text() {
      return text;
    },
    cancel: () => reader.cancel(),
  };
}
