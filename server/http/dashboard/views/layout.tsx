import type { Child } from "hono/jsx";
import type { DeploymentStatus } from "../../../domain/deployment.js";
import type { Session } from "../sessions.js";

/** `2026-01-01 12:00:03 UTC`: readable, and the same on the server and in the browser's live rows. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span>–</span>;
  return <time datetime={new Date(ms).toISOString()}>{formatTime(ms)}</time>;
}

/** `sha256:0123456789ab`: enough to tell digests apart; the whole one is in the title. */
export function Digest({ digest, none = "no digest" }: { digest: string | null | undefined; none?: string }) {
  if (!digest) return <span class="muted">{none}</span>;
  return (
    <code class="digest" title={digest}>
      {digest.slice(0, 19)}
    </code>
  );
}

export function Status({ status }: { status: DeploymentStatus | string }) {
  return <span class={`status status-${status}`}>{status.replaceAll("_", " ")}</span>;
}

/** The links to the confirmation pages of a deployment awaiting approval. */
export function ApprovalLinks({ id }: { id: string }) {
  return (
    <>
      <a class="button primary" href={`/deployments/${id}/approve`}>
        Approve…
      </a>
      <a class="button" href={`/deployments/${id}/reject`}>
        Reject…
      </a>
    </>
  );
}

export function CsrfField({ session }: { session: Session }) {
  return <input type="hidden" name="csrf" value={session.csrf} />;
}

export function Layout(props: { title: string; session?: Session; page?: "services" | "history" | "deployment"; children: Child; live?: string }) {
  const { session, page } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="referrer" content="same-origin" />
        <title>{`${props.title} · deployer`}</title>
        <link rel="stylesheet" href="/assets/dashboard.css" />
        <link rel="icon" href="/assets/favicon.svg" type="image/svg+xml" />
        <script src="/assets/dashboard.js" defer></script>
      </head>
      <body data-live={props.live}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/">
            deployer
          </a>
          {session && (
            <nav aria-label="Main">
              <a href="/" aria-current={page === "services" ? "page" : undefined}>
                Services
              </a>
              <a href="/history" aria-current={page === "history" ? "page" : undefined}>
                History
              </a>
            </nav>
          )}
          {session && (
            <div class="who">
              <span>
                {session.claims.sub} <span class="muted">({session.canWrite ? "read and write" : "read only"})</span>
              </span>
              <form method="post" action="/sign-out">
                <CsrfField session={session} />
                <button type="submit" class="link">
                  Sign out
                </button>
              </form>
            </div>
          )}
        </header>
        <main id="main" tabindex={-1}>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function ErrorPage(props: { session?: Session; status: number; title: string; message: string; back?: string }) {
  return (
    <Layout title={props.title} session={props.session}>
      <h1>{props.title}</h1>
      <p class="notice notice-error" role="alert">
        {props.message}
      </p>
      <p>
        <a href={props.back ?? "/"}>Back</a>
      </p>
    </Layout>
  );
}
