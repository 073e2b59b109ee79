/**
 * Characters a terminal acts on rather than shows: C0 and C1 controls (escape sequences, carriage returns, line
 * breaks), the Unicode line and paragraph separators and bidirectional overrides. What the server stores to be
 * shown refuses them (operations/oidc-source-input.ts); what the CLI prints escapes them (cli/render.ts).
 */
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
