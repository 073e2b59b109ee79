/**
 * How the notifiers reach a URL an operator configured (APPRISE_SIDECAR_URL,
 * DEPLOYER_NOTIFY_WEBHOOK_URL). A login in the URL (`http://user:pass@host/`,
 * which Shepherd's curl sent as Basic auth) goes in an Authorization header:
 * fetch refuses a URL that holds one, and its error would repeat the password
 * in every log line. Redirects are not followed: the receiver is the one
 * configured, and a 3xx answer counts as not delivered.
 */
export interface Outbound {
  /** The URL without its login, safe to log. */
  url: string;
  headers: Record<string, string>;
}

export function outbound(configured: string): Outbound {
  const url = new URL(configured);
  if (!url.username && !url.password) return { url: configured, headers: {} };
  // As the URL spells them, percent-escapes undone; a `%` that starts none (`pa%ss`) is taken as it is.
  const login = `${decodePart(url.username)}:${decodePart(url.password)}`;
  url.username = "";
  url.password = "";
  return { url: url.toString(), headers: { authorization: `Basic ${Buffer.from(login).toString("base64")}` } };
}

/** Said of a 3xx answer, which is not followed. */
export const redirected = (res: Response) => (res.status >= 300 && res.status < 400 ? " (a redirect, not followed)" : "");

/** Each run of escapes undone on its own (a run keeps a multi-byte character together); a lone `%` stays. */
function decodePart(part: string): string {
  return part.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}
