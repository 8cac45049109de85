/*
 * Local time. OnGuard keeps ACTIVATE/DEACTIVATE as its server's wall-clock time and OpenAccess
 * shows them with that zone's offset ("2020-07-08T00:00:00-07:00"). wogate sends the wall time of
 * the instant plus its offset, so a server that honours the offset and one that reads only the
 * wall time both store the same moment. Where the zone repeats an hour (clocks go back), a stored
 * wall time means two instants; DEACTIVATE is moved before the repeated hour when the later
 * reading would end access after validUntil, and ACTIVATE after it when the earlier reading would
 * start access before validFrom. Intl does the zone arithmetic; no time-zone library.
 */

const HOUR = 3_600_000;
const FORMATS = new Map<string, Intl.DateTimeFormat>();

function floorSecond(t: number): number {
  return t - (((t % 1000) + 1000) % 1000);
}

/** The wall-clock reading in `tz` at instant `t`, whole seconds, as milliseconds on a UTC axis. */
export function wallClock(t: number, tz: string): number {
  let f = FORMATS.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    FORMATS.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p['year'] ?? 0, (p['month'] ?? 1) - 1, p['day'] ?? 1, (p['hour'] ?? 0) % 24, p['minute'] ?? 0, p['second'] ?? 0);
}

function offsetAt(t: number, tz: string): number {
  return wallClock(t, tz) - floorSecond(t);
}

/** Every instant whose wall-clock reading in `tz` is `wall` (whole seconds): none in a spring-forward gap, two in a fall-back overlap. */
export function instantsOf(wall: number, tz: string): number[] {
  const offsets = new Set([-48, -24, -12, -6, 0, 6, 12, 24, 48].map((h) => offsetAt(wall + h * HOUR, tz)));
  return [...new Set([...offsets].map((o) => wall - o).filter((t) => wallClock(t, tz) === wall))].sort((a, b) => a - b);
}

/** Instant `t` (whole seconds) as OnGuard reads it: local wall time with that moment's offset. */
export function onGuardTime(t: number, tz: string): string {
  const wall = wallClock(t, tz);
  const off = Math.round((wall - floorSecond(t)) / 60_000);
  const a = Math.abs(off);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${new Date(wall).toISOString().slice(0, 19)}${off < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

const ONGUARD_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An OnGuard date-time as an instant: with an offset as written, without one as wall time in `tz`
 * (the later reading where the hour repeats, so an expiry is never reported earlier than it may
 * be). Undefined when it is not a date-time.
 */
export function parseOnGuardTime(text: string, tz: string): number | undefined {
  const m = ONGUARD_TIME.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(wall);
  if (y < 1900 || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  const frac = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const zone = m[8];
  if (zone) {
    if (zone.toUpperCase() === 'Z') return wall + frac;
    const [, sign, oh, om] = /^([+-])(\d{2}):?(\d{2})$/.exec(zone) ?? [];
    return wall + frac - (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  }
  const at = instantsOf(wall, tz);
  if (at.length > 0) return (at[at.length - 1] as number) + frac;
  // A wall time the zone skips (clocks go forward): the later of the two offsets around the gap.
  return Math.max(wall - offsetAt(wall - 12 * HOUR, tz), wall - offsetAt(wall + 12 * HOUR, tz)) + frac;
}

/** The latest instant at most `validUntil`, on a `unitMs` boundary, whose wall time in `tz` can only mean an instant at most `validUntil`. */
export function deactivateAt(validUntil: number, tz: string, unitMs: number): number {
  const safe = (u: number): boolean => {
    const at = instantsOf(wallClock(u, tz), tz);
    return at.length > 0 && (at[at.length - 1] as number) <= validUntil;
  };
  let hi = Math.floor(validUntil / unitMs) * unitMs;
  if (safe(hi)) return hi;
  let lo = hi - 6 * HOUR;
  for (let i = 0; i < 8 && !safe(lo); i++) lo -= 6 * HOUR;
  while (hi - lo > unitMs) {
    const mid = lo + Math.floor((hi - lo) / unitMs / 2) * unitMs;
    if (safe(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The earliest instant at least `validFrom`, on a `unitMs` boundary, whose wall time in `tz` can only mean an instant at least `validFrom`. */
export function activateAt(validFrom: number, tz: string, unitMs: number): number {
  const safe = (u: number): boolean => {
    const at = instantsOf(wallClock(u, tz), tz);
    return at.length > 0 && (at[0] as number) >= validFrom;
  };
  let lo = Math.ceil(validFrom / unitMs) * unitMs;
  if (safe(lo)) return lo;
  let hi = lo + 6 * HOUR;
  for (let i = 0; i < 8 && !safe(hi); i++) hi += 6 * HOUR;
  while (hi - lo > unitMs) {
    const mid = lo + Math.floor((hi - lo) / unitMs / 2) * unitMs;
    if (safe(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
