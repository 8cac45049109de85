// FortiOS REST plumbing for the FortiGate target: one call with its envelope checked, FortiOS's
// error codes classified, and a per-key lock for read-modify-write of member lists.
import { TargetError, type CallContext } from './target.js';
import type { RestClient, RestResponse } from './rest.js';
import { show } from './text.js';

const API = '/api/v2';

/**
 * FortiOS `error` codes that describe the request, not the moment: retrying the same call cannot
 * help. Meanings after FortiOS's CLI error table as quoted by public clients.
 */
const FORTIOS_ERRORS: Readonly<Record<number, string>> = {
  [-1]: 'invalid length of value',
  [-2]: 'index or VDOM out of range',
  [-3]: 'entry not found',
  [-4]: 'maximum number of entries reached',
  [-5]: 'a duplicate entry already exists',
  [-7]: 'value conflicts with system settings',
  [-8]: 'invalid IP address',
  [-9]: 'invalid IP netmask',
  [-14]: 'permission denied, insufficient privileges',
  [-15]: 'invalid value',
  [-20]: 'blank entry',
  [-23]: 'entry is used',
  [-651]: 'input value is invalid',
  [-703]: 'unknown keyword',
};

export interface Envelope {
  readonly status?: unknown;
  readonly http_status?: unknown;
  readonly results?: unknown;
  readonly error?: unknown;
  readonly cli_error?: unknown;
}

export interface Call {
  readonly op: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly json?: unknown;
}

export interface Answer {
  readonly res: RestResponse;
  readonly env: Envelope;
}

/** Runs callbacks one at a time per key, in arrival order. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = prev.then(() => new Promise<void>((r) => (release = r)));
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The FortiOS REST API as the target uses it: bearer token, optional VDOM, the envelope checked on every answer. */
export class FortiOsApi {
  constructor(
    private readonly targetId: string,
    private readonly client: RestClient,
    private readonly token: string,
    private readonly vdom: Readonly<Record<string, string>>,
    private readonly saveConfig: boolean,
  ) {}

  inVdom(): string {
    return this.vdom['vdom'] !== undefined ? ` in VDOM ${this.vdom['vdom']}` : '';
  }

  results(a: Answer): Record<string, unknown>[] {
    const r = a.env.results;
    if (!Array.isArray(r) || !r.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
      throw this.client.invalid(a.res, 'expected "results" to be a list of objects');
    }
    return r as Record<string, unknown>[];
  }

  first(a: Answer, what: string): Record<string, unknown> {
    const [one] = this.results(a);
    if (one === undefined) throw this.client.invalid(a.res, `no ${what} in "results"`);
    return one;
  }

  members(a: Answer, g: Record<string, unknown>, group: string): string[] {
    const m = g['member'];
    if (!Array.isArray(m) || !m.every((x) => typeof (x as { name?: unknown } | null)?.name === 'string')) {
      throw this.client.invalid(a.res, `group ${group}: expected "member" to be a list of { name }`);
    }
    return m.map((x: { name: string }) => x.name);
  }

  /**
   * One FortiOS call, its envelope checked: 401/403/404/424/500 and a 200 whose status is "error"
   * become TargetErrors here; 429 and other 5xx are RestClient's (retryable, Retry-After kept).
   */
  async call(req: Call, ctx: CallContext): Promise<Answer> {
    return (await this.send(req, ctx, false)) as Answer;
  }

  /** call(), where a missing object (404) answers undefined. */
  find(req: Call, ctx: CallContext): Promise<Answer | undefined> {
    return this.send(req, ctx, true);
  }

  private async send(req: Call, ctx: CallContext, allow404: boolean): Promise<Answer | undefined> {
    const res = await this.client.request({
      op: req.op, method: req.method, path: API + req.path,
      query: { ...this.vdom, ...req.query },
      headers: { authorization: `Bearer ${this.token}` },
      ...(req.json !== undefined ? { json: req.json } : {}),
      accept: [401, 403, 404, 424, 500],
    }, ctx);
    const details = { op: req.op, status: res.status };
    if (res.status === 401) {
      throw this.fail('token_refused', `${res.what} answered 401: the FortiGate refused the API token (wrong, revoked or expired token, or wogate's address is not a trusted host of the REST API admin)`, false, details);
    }
    if (res.status === 403) {
      throw this.fail('forbidden', `${res.what} answered 403: the REST API admin's profile does not allow this call (it needs firewall address read-write${this.saveConfig ? ' and system configuration write to save' : ''})`, false, details);
    }
    const env = this.envelope(res);
    if (res.status === 404) {
      if (allow404) return undefined;
      throw this.fail('not_found', `${res.what} answered 404: not found${this.inVdom()}; ${this.detail(env) || this.client.excerpt(res.text)}`, false, details);
    }
    if (res.status === 424 || res.status === 500) throw this.fortiosError(res, env);
    if (env === undefined || typeof env.status !== 'string') throw this.client.invalid(res, 'expected a FortiOS JSON envelope with "status"');
    if (env.status === 'error') {
      const code = typeof env.error === 'number' ? env.error : undefined;
      throw this.client.refused(res, `FortiOS status "error"; ${this.detail(env) || 'no detail'}`, code === undefined || !(code in FORTIOS_ERRORS), code !== undefined ? { reason: 'fortios_error', fortiosError: code } : { reason: 'fortios_error' });
    }
    if (env.status !== 'success') throw this.client.invalid(res, `FortiOS status ${show(env.status)} is neither success nor error`);
    return { res, env };
  }

  private envelope(res: RestResponse): Envelope | undefined {
    try {
      const v: unknown = JSON.parse(res.text);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Envelope) : undefined;
    } catch {
      return undefined;
    }
  }

  /** FortiOS's own words: error code, its meaning, cli_error; cut short and redacted. */
  private detail(env: Envelope | undefined): string {
    if (env === undefined) return '';
    const parts: string[] = [];
    if (typeof env.error === 'number') parts.push(`error ${env.error}${FORTIOS_ERRORS[env.error] ? ` (${FORTIOS_ERRORS[env.error]})` : ''}`);
    if (typeof env.cli_error === 'string' && env.cli_error.trim() !== '') parts.push(`cli_error: ${this.client.excerpt(env.cli_error.trim())}`);
    return parts.join('; ');
  }

  /**
   * 424 (failed dependency: a VDOM that does not exist, a missing referenced object, a bad
   * attribute) is never fixed by retrying. A 500 with a known FortiOS error code is a refusal
   * of the request too; a 500 without one is the appliance failing, and retryable.
   */
  private fortiosError(res: RestResponse, env: Envelope | undefined): TargetError {
    const code = typeof env?.error === 'number' ? env.error : undefined;
    const known = code !== undefined && code in FORTIOS_ERRORS;
    const retryable = res.status === 500 && !known;
    const hint = res.status === 424 ? ` (failed dependency: does VDOM ${this.vdom['vdom'] ?? '(default)'} exist and may the admin use it? does every referenced object exist?)` : '';
    const detail = this.detail(env) || this.client.excerpt(res.text);
    return this.fail('fortios_error', `${res.what} answered ${res.status}${hint}: ${detail}`, retryable, { op: res.op, status: res.status, ...(code !== undefined ? { fortiosError: code } : {}) });
  }

  private fail(reason: string, message: string, retryable: boolean, details: Record<string, unknown> = {}): TargetError {
    return new TargetError(this.targetId, message, retryable, { reason, ...details });
  }
}
