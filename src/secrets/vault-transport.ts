// The HTTP layer under node-vault. node-vault's own layer (axios with its defaults) takes its TLS
// setting from VAULT_SKIP_VERIFY, follows an environment proxy (which would see the Vault token and
// the AppRole secret_id), follows redirects and has no whole-call deadline. node-vault accepts a
// replacement through its `request-promise` option; this one verifies TLS always, against the
// configured CA bundle or the system store, goes only where the configured address says, and fails
// with messages that name the method and path and nothing else.
import http from 'node:http';
import https from 'node:https';
import axios from 'axios';
import { pathOf, safeAxios, transportFailure } from '../http-safety.js';

export interface VaultTransportOptions {
  /** PEM bundle trusted for Vault's certificate instead of the system store. */
  readonly caPem?: string;
  /** Whole-call deadline. */
  readonly timeoutMs: number;
  /** Default 1 MiB: a KV secret or a login answer is small. */
  readonly maxResponseBytes?: number;
}

/** What node-vault hands its request function (node-vault's options, plus whatever requestOptions held). */
export interface VaultWireRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The JSON body, when there is one. */
  readonly json?: unknown;
}

/** What node-vault expects back: the status, the parsed JSON body, and the path for its health check. */
export interface VaultWireResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly request: { readonly path: string };
}

/** No HTTP answer at all: refused connection, untrusted certificate, deadline. */
export class VaultTransportError extends Error {
  override readonly name = 'VaultTransportError';
  readonly code = 'VAULT_UNREACHABLE';
  constructor(message: string, readonly errorCode?: string) {
    super(message);
  }
}

export interface VaultTransport {
  /** The shape node-vault calls as `config['request-promise'].defaults(rpDefaults)`; its defaults (strictSSL among them) are ignored. */
  defaults(_ignored: unknown): (req: VaultWireRequest) => Promise<VaultWireResponse>;
  /** Closes idle connections. */
  destroy(): void;
}

const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

export function vaultTransport(o: VaultTransportOptions): VaultTransport {
  const agents = {
    http: new http.Agent({ keepAlive: false }),
    // rejectUnauthorized is spelled out: nothing in the environment or in node-vault's options reaches this agent.
    https: new https.Agent({ keepAlive: false, rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(o.caPem ? { ca: o.caPem } : {}) }),
  };
  const client = safeAxios({ timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes ?? 1024 * 1024, agents });

  const send = async (req: VaultWireRequest): Promise<VaultWireResponse> => {
    const path = pathOf(req.uri);
    const what = `${req.method} ${path}`;
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    let data: string | undefined;
    if (req.json !== undefined && typeof req.json === 'object') {
      data = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    }
    // axios' own timeout is per socket phase; this deadline bounds the whole call.
    const deadline = AbortSignal.timeout(o.timeoutMs);
    let res;
    try {
      res = await client.request<string>({ method: req.method, url: req.uri, headers, data, signal: deadline });
    } catch (e) {
      // Never the library's error: its config carries the X-Vault-Token header and the request body.
      const code = axios.isAxiosError(e) ? e.code : undefined;
      if (code && TLS_CODE.test(code)) throw new VaultTransportError(`${what}: Vault's TLS certificate is not trusted (${code}); set secrets.vault.caPem to the CA that issued it`, code);
      const f = transportFailure(e, deadline.aborted, o.timeoutMs);
      throw new VaultTransportError(`${what}: ${f.problem}`, f.details.errorCode);
    }
    return { statusCode: res.status, body: parseBody(res.data), request: { path } };
  };

  return {
    defaults: () => send,
    destroy() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/** Vault answers JSON; anything else (a proxy's error page) becomes no body, so it can't reach a message. */
function parseBody(text: unknown): unknown {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
