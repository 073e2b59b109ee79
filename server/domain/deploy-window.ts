/**
 * Deploy windows (`deployer.window=Mon-Fri 09:00-17:00 Europe/Berlin`, `;`
 * between several): when a service may be updated, in the wall-clock time of
 * a zone. A window whose end is before its start runs past midnight into the
 * next day. Daylight-saving changes are the zone's: a window opening at a time
 * the clock skips opens when the clock comes back into it.
 */

export interface DeployWindow {
  /** 0 = Sunday … 6 = Saturday: the days the window opens on. */
  days: number[];
  /** Minutes after local midnight; `end` may be 1440 (24:00). */
  start: number;
  end: number;
  /** IANA zone, `UTC` by default. */
  zone: string;
  /** As written, for messages. */
  text: string;
}

const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MINUTE = 60_000;
const DAY = 1440;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      weekday: "short",
    });
    formatters.set(zone, f);
  }
  return f;
}

/**
 * The names of the IANA database that are not `Area/Location` (tzdata's zones and backward links). Any other name
 * without a `/` that the runtime takes is one of ICU's own aliases, which are no IANA zones and can mean another
 * zone than the writer's: `BST` is Asia/Dhaka to it, `IST` Asia/Kolkata, `PST` and `CST` US zones.
 */
const IANA_WITHOUT_AREA = new Set(
  [
    "UTC",
    "UCT",
    "GMT",
    "GMT0",
    "GMT+0",
    "GMT-0",
    "Greenwich",
    "Universal",
    "Zulu",
    "CET",
    "EET",
    "MET",
    "WET",
    "EST5EDT",
    "CST6CDT",
    "MST7MDT",
    "PST8PDT",
    "Cuba",
    "Egypt",
    "Eire",
    "GB",
    "GB-Eire",
    "Hongkong",
    "Iceland",
    "Iran",
    "Israel",
    "Jamaica",
    "Japan",
    "Kwajalein",
    "Libya",
    "NZ",
    "NZ-CHAT",
    "Navajo",
    "PRC",
    "Poland",
    "Portugal",
    "ROC",
    "ROK",
    "Singapore",
    "Turkey",
    "W-SU",
  ].map((name) => name.toLowerCase()),
);

/**
 * IANA names that read like a place's time but are a fixed offset all year: `EST` is UTC−5 in July too, an hour
 * off New York's. A window in one would open an hour early or late half the year.
 */
const FIXED_ALL_YEAR: Record<string, string> = { est: "America/New_York", mst: "America/Denver or America/Phoenix", hst: "Pacific/Honolulu" };

/** Why `zone` is not an IANA zone the runtime knows (names compared as the runtime does: case aside), or undefined. */
function zoneProblem(zone: string): string | undefined {
  try {
    formatter(zone);
  } catch {
    return `unknown time zone ${JSON.stringify(zone)}`;
  }
  const fixed = FIXED_ALL_YEAR[zone.toLowerCase()];
  if (fixed) return `time zone ${JSON.stringify(zone)} is a fixed offset all year, with no summer time; write the place's zone (${fixed})`;
  // ICU's own, beside IANA's: names tzdata no longer has.
  if (/^systemv\//i.test(zone) || /^us\/pacific-new$/i.test(zone)) return `unknown time zone ${JSON.stringify(zone)}`;
  if (!zone.includes("/") && !IANA_WITHOUT_AREA.has(zone.toLowerCase())) {
    return `time zone ${JSON.stringify(zone)} is an abbreviation, which can mean another zone than you think; write an IANA zone such as Europe/London or America/New_York`;
  }
  return undefined;
}

/** The wall clock of `zone` at instant `t`. */
function local(t: number, zone: string) {
  const parts = Object.fromEntries(
    formatter(zone)
      .formatToParts(new Date(t))
      .map((p) => [p.type, p.value]),
  );
  return {
    y: Number(parts.year),
    m: Number(parts.month),
    d: Number(parts.day),
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
    weekday: DAY_NAMES.indexOf(String(parts.weekday).toLowerCase().slice(0, 3)),
  };
}

/**
 * The first instant the wall clock of `zone` shows `minutes` on the calendar
 * day y-m-d; inside an hour the clock skips, the instant where the skip
 * begins (the caller walks on from there).
 */
function instantOf(y: number, m: number, d: number, minutes: number, zone: string): number {
  const wall = Date.UTC(y, m - 1, d, 0, minutes);
  const offsetAt = (t: number) => {
    const l = local(t, zone);
    return Date.UTC(l.y, l.m - 1, l.d, 0, l.minutes) - Math.floor(t / MINUTE) * MINUTE;
  };
  // The zone's offsets half a day either side: one of them is in force at that wall time, unless it is skipped.
  const candidates = [...new Set([wall - offsetAt(wall - 43_200_000), wall - offsetAt(wall + 43_200_000)])].sort((a, b) => a - b);
  const exact = candidates.find((t) => {
    const l = local(t, zone);
    return l.y === y && l.m === m && l.d === d && l.minutes === minutes;
  });
  return exact ?? candidates[0]!;
}

const FULL_DAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
/** A day written as the start of its name, three letters at least (`Mon`, `Tues`, `Thurs`, `Monday`), any case; else -1 (`Monkey`, `Mo`). */
const dayOf = (name: string) => (name.length < 3 ? -1 : FULL_DAY_NAMES.findIndex((day) => day.startsWith(name)));

function parseDays(text: string): number[] | undefined {
  const days = new Set<number>();
  for (const part of text.toLowerCase().split(",")) {
    const ends = part.split("-");
    if (ends.length > 2) return undefined;
    const a = dayOf(ends[0]!);
    const b = ends.length === 1 ? a : dayOf(ends[1]!);
    if (a === -1 || b === -1) return undefined;
    for (let i = a; ; i = (i + 1) % 7) {
      days.add(i);
      if (i === b) break;
    }
  }
  return [...days].sort();
}

function parseClock(text: string, allow24: boolean): number | undefined {
  const m = /^(\d\d):(\d\d)$/.exec(text);
  if (!m) return undefined;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  if (Number(m[2]) > 59 || minutes > (allow24 ? DAY : DAY - 1)) return undefined;
  return minutes;
}

/** `<days> <HH:MM-HH:MM> [<IANA zone>]`, `;` between several; days such as `Mon-Fri`, `Sat,Sun`, `Monday`, `daily`. */
export function parseWindows(value: string): DeployWindow[] | string {
  const windows: DeployWindow[] = [];
  for (const raw of value.split(";")) {
    const text = raw.trim().replace(/\s+/g, " ");
    const [daysText, hours, zone = "UTC", ...extra] = text.split(" ");
    if (!daysText || !hours || extra.length) return `expected "<days> <HH:MM-HH:MM> [<zone>]", got ${JSON.stringify(text)}`;
    const days = daysText.toLowerCase() === "daily" ? [0, 1, 2, 3, 4, 5, 6] : parseDays(daysText);
    if (!days) return `not days such as Mon-Fri or Sat,Sun: ${JSON.stringify(daysText)}`;
    const [s, e, ...more] = hours.split("-");
    const start = parseClock(s ?? "", false);
    const end = parseClock(e ?? "", true);
    if (start === undefined || end === undefined || start === end || more.length) {
      return `not a time span such as 09:00-17:00: ${JSON.stringify(hours)}`;
    }
    const problem = zoneProblem(zone);
    if (problem) return problem;
    windows.push({ days, start, end, zone, text });
  }
  return windows;
}

function openIn(w: DeployWindow, t: number): boolean {
  const l = local(t, w.zone);
  if (w.start < w.end) return w.days.includes(l.weekday) && l.minutes >= w.start && l.minutes < w.end;
  // Past midnight: the evening of an opening day, or the early hours after one.
  return (w.days.includes(l.weekday) && l.minutes >= w.start) || (w.days.includes((l.weekday + 6) % 7) && l.minutes < w.end);
}

export function isOpen(windows: DeployWindow[], t: number): boolean {
  return windows.length === 0 || windows.some((w) => openIn(w, t));
}

/** The first instant at or after `t` when a window is open (t itself when one is). */
export function nextOpening(windows: DeployWindow[], t: number): number {
  if (isOpen(windows, t)) return t;
  let best = Infinity;
  for (const w of windows) {
    const today = local(t, w.zone);
    for (let k = 0; k <= 8; k++) {
      const date = new Date(Date.UTC(today.y, today.m - 1, today.d + k));
      if (!w.days.includes(date.getUTCDay())) continue;
      let at = instantOf(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), w.start, w.zone);
      // An opening inside a skipped hour: the first minute the clock shows inside the window.
      for (let i = 0; i < 180 && !openIn(w, at); i++) at += MINUTE;
      if (at >= t && openIn(w, at)) {
        best = Math.min(best, at);
        break;
      }
    }
  }
  return best;
}
