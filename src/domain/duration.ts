import { WogateError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:(\d+)(ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/** Parses "90s", "15m", "2h30m", "1d" (or a number of seconds) into milliseconds. */
export function parseDuration(value: string | number, where: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new WogateError('CONFIG_INVALID', `${where}: ${value} is not a non-negative number of seconds`);
    return value * 1000;
  }
  const text = value.trim();
  if (!DURATION.test(text)) {
    throw new WogateError('CONFIG_INVALID', `${where}: "${value}" is not a duration (expected e.g. 90s, 15m, 2h30m, 1d)`);
  }
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms;
}

/** Renders milliseconds the way nft and humans read them: 2h12m10s. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let s = Math.ceil(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${d ? `${d}d` : ''}${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s';
}
