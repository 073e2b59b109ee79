import { z } from "zod";
import { parseServiceFilter, type ServiceFilter } from "../domain/service-filter.js";
import { parseUpdateOptions, type UpdateOptions } from "./update-options.js";

/** The value types of the environment's variables, each a zod schema that reads one string. */

export const booleanText = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v), {
    message: "expected true/false/1/0/yes/no",
  })
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

export const flag = (fallback: boolean) => booleanText.optional().transform((v) => v ?? fallback);

export const list = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

export const hostPort = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$/;

export const hostList = list.refine((hosts) => hosts.every((h) => hostPort.test(h)), {
  message: "expected a comma-separated list of host or host:port",
});

/** Shepherd's SLEEP_TIME follows `sleep`, its TIMEOUT `timeout`: a number with an optional s, m, h or d suffix. */
const durationUnits: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export function parseSleepTime(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * durationUnits[m[2] ?? ""]!);
}

/** A duration above 0 in ms, read as `sleep` and `timeout` read theirs (seconds without a suffix); `fallback` when unset. */
export const positiveDuration = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const ms = parseSleepTime(v && v.trim() !== "" ? v : fallback);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({ code: "custom", message: "expected a duration such as 30s, 5m, 1h (seconds without a suffix)" });
        return z.NEVER;
      }
      return ms;
    });

export const sleepTime = positiveDuration("5m");

/** A duration such as 30s or 5m, `0` for none; `fallback` when unset. */
export const durationOrZero = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const ms = parseSleepTime(v && v.trim() !== "" ? v : fallback);
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: "expected a duration such as 30s, 5m, 1h, or 0 for none" });
        return z.NEVER;
      }
      return ms;
    });

export const serviceFilter = z
  .string()
  .optional()
  .transform((v, ctx): ServiceFilter | undefined => {
    if (!v || v.trim() === "") return undefined;
    try {
      return parseServiceFilter(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

export const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? String(fallback) : v.trim()))
    .pipe(z.string().regex(/^\d+$/, "expected a whole number"))
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));

export const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

export const updateOptions = (sections: Array<"update" | "rollback">) =>
  z
    .string()
    .optional()
    .transform((v, ctx): UpdateOptions => {
      try {
        return parseUpdateOptions(v, sections);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });

/** An IANA zone, as TZ names it for `date`; Intl refuses unknown ones. */
export const timeZone = optionalText.refine(
  (v) => {
    if (v === undefined) return true;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: v });
      return true;
    } catch {
      return false;
    }
  },
  { message: "expected an IANA time zone such as Europe/Berlin or UTC" },
);

/** Shepherd handed the URL to curl, which takes `apprise:5000` as http; so do we. */
export const appriseUrl = optionalText
  .transform((v) => (v === undefined || /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`))
  .pipe(z.url({ protocol: /^https?$/, message: "expected an http(s) URL such as http://apprise:5000" }).optional());

/** The server's base URL as its users reach it: http(s), no credentials, query or fragment; kept without a trailing slash. */
export const publicUrl = optionalText.pipe(
  z
    .url({ protocol: /^https?$/, message: "expected the server's http(s) URL, such as https://deploy.example.com" })
    .refine((v) => {
      try {
        const u = new URL(v);
        return !u.username && !u.password && !u.search && !u.hash;
      } catch {
        return false; // z.url() has said why
      }
    }, "expected a plain http(s) URL, with no credentials, query or fragment")
    .transform((v) => v.replace(/\/+$/, ""))
    .optional(),
);
