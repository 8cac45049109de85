// What every outbound HTTP adapter (targets and CMMS sources) needs to stay safe with answers it
// does not control: messages that never carry a query string or a credential, log excerpts a
// hostile body cannot forge lines with, and a Retry-After that cannot park wogate for days.
import type http from 'node:http';
import type https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import { WogateError } from './domain/index.js';

/** A remote asking to wait longer than this is waited on for this long, no more. */
export const RETRY_AFTER_CAP_MS = 3_600_000;

const EXCERPT_CHARS = 200;
// eslint-disable-next-line no-control-regex -- control characters would forge log lines
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** A configured base URL: http or https, no query, fragment or credentials (those go in headers). */
export function checkHttpUrl(raw: string, where: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new WogateError('CONFIG_INVALID', `${where} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WogateError('CONFIG_INVALID', `${where} must be http or https`);
  if (u.search || u.hash || u.username || u.password) throw new WogateError('CONFIG_INVALID', `${where} must not have a query, fragment or credentials`);
  return u;
}

/** The URL's path only: a query string may carry keys, so it never reaches a message or a log. */
export function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split(/[?#]/, 1)[0] ?? '';
  }
}

/**
 * The first characters of an answer for a message: control characters blanked, and any of
 * `secrets` (an error page may echo request headers) replaced.
 */
export function excerpt(data: unknown, secrets: readonly string[] = []): string {
  let text = typeof data === 'string' ? data : '';
  if (text === '') return '(empty body)';
  for (const s of secrets) if (s.trim() !== '') text = text.split(s.trim()).join('[redacted]');
  const cut = text.slice(0, EXCERPT_CHARS).replace(CONTROL, ' ');
  return text.length > EXCERPT_CHARS ? `${cut}…` : cut;
}

/** Retry-After as seconds or an HTTP date (or a fallback header in seconds), in ms, capped. */
export function parseRetryAfter(h: unknown, now: Date, fallbackSeconds?: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof h === 'string' && h.trim() !== '') {
    const v = h.trim();
    ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now.getTime();
  } else if (typeof fallbackSeconds === 'string' && /^\d+$/.test(fallbackSeconds.trim())) {
    ms = Number(fallbackSeconds.trim()) * 1000;
  }
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), RETRY_AFTER_CAP_MS);
}

export interface TransportFailure {
  /** What went wrong, for `${method} ${path}: ${problem}`; never the library's own message, which can carry the full URL. */
  readonly problem: string;
  /** The answer was over the size limit: an invalid response rather than a network fault. */
  readonly tooLarge: boolean;
  readonly details: { readonly errorCode?: string };
}

/** Classifies an axios failure that produced no HTTP status: timeout, abort, oversized answer or network. */
export function transportFailure(e: unknown, timedOut: boolean, timeoutMs: number, limitText = 'the response limit'): TransportFailure {
  const code = axios.isAxiosError(e) ? e.code : undefined;
  const details = code ? { errorCode: code } : {};
  if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT') return { problem: `no answer within ${timeoutMs} ms`, tooLarge: false, details };
  if (code === 'ERR_CANCELED') return { problem: 'call aborted', tooLarge: false, details };
  if (code === 'ERR_BAD_RESPONSE' && axios.isAxiosError(e) && /maxContentLength/.test(e.message)) return { problem: `answer larger than ${limitText}`, tooLarge: true, details };
  return { problem: `network error${code ? ` ${code}` : ''}`, tooLarge: false, details };
}

/**
 * The axios instance every outbound adapter sends through: whole answers as raw text (parsed by
 * the caller, so an HTML error page from a proxy is told apart), no redirects followed, no
 * environment proxy (it would see the credentials), every status returned to the caller, and a
 * size limit. The agents decide TLS (CA bundle, minimum version) and connection reuse.
 */
export function safeAxios(o: { readonly timeoutMs: number; readonly maxResponseBytes: number; readonly agents: { readonly http: http.Agent; readonly https: https.Agent } }): AxiosInstance {
  return axios.create({
    adapter: 'http',
    timeout: o.timeoutMs,
    maxRedirects: 0,
    validateStatus: () => true,
    maxContentLength: o.maxResponseBytes,
    // What wogate sends is small; a body this large is a bug, not a request.
    maxBodyLength: 1024 * 1024,
    responseType: 'text',
    transformResponse: [(d: unknown) => d],
    proxy: false,
    httpAgent: o.agents.http,
    httpsAgent: o.agents.https,
  });
}
