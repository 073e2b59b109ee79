import type { Child } from "hono/jsx";
import type { DeploymentRecord } from "../../../store/deployment-store.js";
import type { Session } from "../sessions.js";
import { CsrfField, Digest, Layout, Status, Time } from "./layout.js";

export function SignInPage(props: { error?: string; status?: number }) {
  return (
    <Layout title="Sign in">
      <h1>Sign in</h1>
      <p>
        Paste an API token with the <code>deployments:read</code> scope (and <code>deployments:write</code> for the actions). Make one on the server's
        machine with <code>npm run -s token -- api --scope "deployments:read deployments:write" --expires 30d</code>.
      </p>
      {props.error && (
        <p class="notice notice-error" role="alert" id="sign-in-error">
          {props.error}
        </p>
      )}
      <form method="post" action="/sign-in" class="stack">
        <p class="field">
          <label for="token">API token</label>
          <input
            id="token"
            name="token"
            type="password"
            required
            autocomplete="off"
            spellcheck={false}
            autofocus
            aria-describedby={props.error ? "sign-in-error" : undefined}
          />
        </p>
        <p>
          <button type="submit" class="primary">
            Sign in
          </button>
        </p>
      </form>
      <p class="muted">The token stays on the server; your browser keeps only a session cookie, until you sign out or for 12 hours at most.</p>
    </Layout>
  );
}

/** One action, spelled out, with the button that does it; nothing happens until it is pressed. */
export function ConfirmPage(props: {
  session: Session;
  title: string;
  action: string;
  button: string;
  danger?: boolean;
  children: Child;
  back: string;
}) {
  return (
    <Layout title={props.title} session={props.session}>
      <h1>{props.title}</h1>
      <div class="confirm">{props.children}</div>
      <form method="post" action={props.action} class="stack">
        <CsrfField session={props.session} />
        <p class="actions">
          <button type="submit" class={props.danger ? "danger" : "primary"}>
            {props.button}
          </button>
          <a class="button" href={props.back}>
            Cancel
          </a>
        </p>
      </form>
    </Layout>
  );
}

/** The earlier successes of a service, to pick the one to roll back to. */
export function RollbackChooser(props: { session: Session; service: string; running: string | null; candidates: DeploymentRecord[] }) {
  const { service } = props;
  return (
    <Layout title={`Roll back ${service}`} session={props.session}>
      <h1>Roll back {service}</h1>
      <p>
        {service} runs <Digest digest={props.running} />. Choose the earlier successful deployment whose digest to run again.
      </p>
      {props.candidates.length === 0 ? (
        <p class="notice">Nothing to roll back to: {service} has no earlier successful deployment of another digest.</p>
      ) : (
        <form method="get" action={`/services/${encodeURIComponent(service)}/rollback`} class="stack">
          <fieldset>
            <legend>Earlier successes, newest first</legend>
            {props.candidates.map((d, i) => (
              <p class="choice">
                <input type="radio" name="to" id={`to-${d.id}`} value={d.id} required checked={i === 0} />{" "}
                <label for={`to-${d.id}`}>
                  <code class="image">{d.image}</code> <Digest digest={d.digest} /> · <Status status={d.status} />{" "}
                  <Time ms={d.finishedAt ?? d.createdAt} /> · {d.trigger} by {d.requestedBy}
                </label>
              </p>
            ))}
          </fieldset>
          <p class="actions">
            <button type="submit" class="primary">
              Review rollback…
            </button>
            <a class="button" href="/">
              Cancel
            </a>
          </p>
        </form>
      )}
    </Layout>
  );
}
