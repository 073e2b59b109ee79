/**
 * Docker's own rule for what names a swarm service (swarmkit's
 * validateAnnotations): a DNS name component of at most 63 characters, letters,
 * digits, `-` and `_`, starting and ending with a letter or digit. Service IDs
 * (25 lowercase base-36 characters) obey it too, so one rule covers both.
 * Nothing else can name a service, so anything else is refused before it comes
 * near an Engine API path.
 */
export const SERVICE_REF_MAX_LENGTH = 63;
// Written without nested quantifiers, so a hostile string cannot make it backtrack.
export const SERVICE_REF = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/;

export function isServiceRef(value: string): boolean {
  return value.length <= SERVICE_REF_MAX_LENGTH && SERVICE_REF.test(value);
}

export const SERVICE_REF_RULE = "not a Docker service name or id (1 to 63 letters, digits, '-' or '_', starting and ending with a letter or digit)";
