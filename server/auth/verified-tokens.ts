import type { JWTPayload } from "jose";

/**
 * Skew allowed for `nbf` (an issuer's clock, or the CLI's on another host, a little ahead must not refuse a fresh
 * token). None for `exp`: an expired token is refused (expiredAt below), as the contract says.
 */
export const CLOCK_TOLERANCE_S = 30;

/** Whether a token's `exp` (seconds) has passed at `nowMs`: at `exp` it has. */
export const expiredAt = (exp: number | undefined, nowMs: number) => exp !== undefined && exp <= nowMs / 1000;

/**
 * Tokens already verified, by their exact text. A registry sends the same
 * token with every push, and an HMAC check per request was a fifth of a
 * webhook's CPU. The signature of an identical string cannot change, and the
 * keys are fixed for the process's life, so only time is checked again: an
 * entry is used until the token's `exp`, then dropped so that the check
 * reports the expiry. Tokens with `nbf`
 * are not kept. Bounded; the oldest entry goes first.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { audience: string; payload: Readonly<JWTPayload> }>();

  constructor(private readonly max = 1000) {}

  get(token: string, audience: string, nowMs: number): JWTPayload | undefined {
    const entry = this.entries.get(token);
    if (!entry || entry.audience !== audience) return undefined;
    const exp = entry.payload.exp;
    if (expiredAt(exp, nowMs)) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.payload;
  }

  add(token: string, audience: string, payload: JWTPayload): void {
    if (payload.nbf !== undefined) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { audience, payload: Object.freeze({ ...payload }) });
  }
}
