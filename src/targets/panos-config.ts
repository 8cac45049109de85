import { parseDuration, WogateError } from '../domain/index.js';
import type { PanosScope, PanosTargetOptions } from './panos.js';
import { FLOW_PROPERTIES, IPV4_PATTERN } from './text.js';

/** Dotted quad, no leading zeros (the adapter checks the same way). */
/** Letters, digits, `_`, `.`, `-`: nothing that can close an XML attribute or a DAG filter's quotes. */
export const PANOS_TAG_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$';
const PREFIX_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$';
/** The longest tag timeout PAN-OS takes, in seconds: 30 days [I: pan-os-python's docstring; not in the vendor docs we could read]. */
export const PANOS_MAX_TAG_TIMEOUT_S = 2_592_000;

/**
 * JSON Schema (draft-07) of a target's `panos:` block, for config.schema.json under
 * `definitions.target.properties.panos`. References `#/definitions/secretRef` and
 * `#/definitions/duration` of the main schema.
 */
export const PANOS_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'scopes'],
  oneOf: [{ required: ['apiKey'] }, { required: ['username', 'password'] }],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://[^?#]+$', description: 'management address of the firewall (or of Panorama, with target); /api/ is appended' },
    apiKey: { $ref: '#/definitions/secretRef', description: 'API key of the wogate admin, sent in the X-PAN-KEY header; or give username and password instead' },
    username: { type: 'string', pattern: '^[^\\s:]{1,63}$', description: 'admin that wogate generates its API key for (type=keygen); with password, instead of apiKey' },
    password: { $ref: '#/definitions/secretRef', description: 'password of that admin' },
    vsys: { type: 'string', pattern: '^vsys[1-9][0-9]{0,2}$', description: 'virtual system the tags are registered in; default: the firewall\'s default (vsys1)' },
    target: { type: 'string', pattern: '^[A-Za-z0-9]{1,32}$', description: 'serial number of the managed firewall, when baseUrl is Panorama' },
    caPem: { $ref: '#/definitions/secretRef', description: 'file:/path of a PEM CA bundle to trust for the management certificate instead of the system store' },
    timeout: { $ref: '#/definitions/duration', description: 'deadline of one API call; default 10s' },
    maxResponseBytes: { type: 'integer', minimum: 65536, maximum: 268435456, description: 'largest answer accepted (the registered-ip table on list); default 16 MiB' },
    tagPrefix: { type: 'string', pattern: PREFIX_PATTERN, description: 'marker every scope tag must start with, so wogate\'s tags are recognisable on the firewall; default wogate-' },
    maxTagTimeout: { $ref: '#/definitions/duration', description: 'longest tag timeout to send (whole seconds, at most 30d); longer windows are registered for this long and re-registered by wogate; default 30d' },
    scopes: {
      type: 'array',
      minItems: 1,
      maxItems: 4096,
      description: 'the flows this target can open: each destination is reached through the dynamic address group that matches its tag',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'port', 'protocol', 'tag'],
        properties: {
          ...FLOW_PROPERTIES,
          tag: { type: 'string', pattern: PANOS_TAG_PATTERN, description: 'tag whose dynamic address group the security rule for this flow uses as source' },
        },
      },
    },
  },
} as const;

type Block = Readonly<Record<string, unknown>>;

function bad(where: string, field: string, problem: string): never {
  throw new WogateError('CONFIG_INVALID', `${where}.${field} ${problem}`);
}

function optString(b: Block, where: string, field: string): string | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') bad(where, field, 'must be a non-empty string');
  return v;
}

function wholeSeconds(text: unknown, where: string, field: string): number {
  if (typeof text !== 'string') bad(where, field, 'must be a duration such as 30d');
  const ms = parseDuration(text, `${where}.${field}`);
  if (ms % 1000 !== 0 || ms < 1000) bad(where, field, `must be whole seconds, at least 1s (got ${text})`);
  return ms / 1000;
}

/**
 * The config block (schema-checked, secrets resolved, durations as text) → PanosTargetOptions.
 * Repeats the checks the types need, and adds what the schema can't say: no two scopes on one
 * destination or one tag, every tag carrying the prefix, a CA that is PEM.
 */
export function panosTargetOptions(id: string, block: Block): PanosTargetOptions {
  const where = `target ${id}: panos`;
  const baseUrl = optString(block, where, 'baseUrl') ?? bad(where, 'baseUrl', 'is required');
  const apiKey = optString(block, where, 'apiKey');
  const username = optString(block, where, 'username');
  const password = optString(block, where, 'password');
  if (apiKey !== undefined && (username !== undefined || password !== undefined)) bad(where, 'apiKey', 'cannot be combined with username/password: choose one');
  if (apiKey === undefined && (username === undefined || password === undefined)) {
    bad(where, username === undefined ? 'apiKey' : 'password', username === undefined ? 'or username and password are required' : 'is required with username');
  }
  const caPem = optString(block, where, 'caPem');
  if (caPem !== undefined && !caPem.includes('-----BEGIN CERTIFICATE-----')) bad(where, 'caPem', 'is not a PEM certificate bundle (no BEGIN CERTIFICATE line)');
  const tagPrefix = optString(block, where, 'tagPrefix') ?? 'wogate-';
  if (!new RegExp(PREFIX_PATTERN).test(tagPrefix)) bad(where, 'tagPrefix', `must match ${PREFIX_PATTERN}`);

  const maxTagTimeoutSeconds = block['maxTagTimeout'] === undefined ? undefined : wholeSeconds(block['maxTagTimeout'], where, 'maxTagTimeout');
  if (maxTagTimeoutSeconds !== undefined && maxTagTimeoutSeconds > PANOS_MAX_TAG_TIMEOUT_S) bad(where, 'maxTagTimeout', `must be at most 30d (${PANOS_MAX_TAG_TIMEOUT_S} s), the longest tag timeout PAN-OS takes`);
  const timeoutMs = block['timeout'] === undefined ? undefined : parseDuration(String(block['timeout']), `${where}.timeout`);
  if (timeoutMs !== undefined && timeoutMs <= 0) bad(where, 'timeout', 'must be longer than 0');

  const rawScopes = block['scopes'];
  if (!Array.isArray(rawScopes) || rawScopes.length === 0) bad(where, 'scopes', 'must list at least one scope');
  const tags = new Map<string, number>();
  const flows = new Map<string, number>();
  const scopes = rawScopes.map((raw: unknown, i): PanosScope => {
    const at = `scopes[${i}]`;
    if (typeof raw !== 'object' || raw === null) bad(where, at, 'is not an object');
    const s = raw as Block;
    const address = typeof s['address'] === 'string' && new RegExp(IPV4_PATTERN).test(s['address']) ? s['address'] : bad(where, `${at}.address`, 'is not a dotted-quad IPv4 address');
    const port = Number.isInteger(s['port']) && (s['port'] as number) >= 1 && (s['port'] as number) <= 65535 ? (s['port'] as number) : bad(where, `${at}.port`, 'is not a port between 1 and 65535');
    const protocol = s['protocol'] === 'tcp' || s['protocol'] === 'udp' ? s['protocol'] : bad(where, `${at}.protocol`, 'is neither tcp nor udp');
    const tag = typeof s['tag'] === 'string' && new RegExp(PANOS_TAG_PATTERN).test(s['tag']) ? s['tag'] : bad(where, `${at}.tag`, `must match ${PANOS_TAG_PATTERN}`);
    if (!tag.startsWith(tagPrefix)) bad(where, `${at}.tag`, `"${tag}" does not start with the tagPrefix "${tagPrefix}"`);
    const flow = `${address}:${port}/${protocol}`;
    // One tag opens one flow: two flows on one tag would make revoking one cut the other.
    if (tags.has(tag)) bad(where, `${at}.tag`, `"${tag}" is already used by scopes[${tags.get(tag)}]; each scope needs its own tag`);
    if (flows.has(flow)) bad(where, at, `repeats ${flow} from scopes[${flows.get(flow)}]`);
    tags.set(tag, i);
    flows.set(flow, i);
    return { address, port, protocol, tag };
  });

  const maxResponseBytes = block['maxResponseBytes'];
  if (maxResponseBytes !== undefined && (!Number.isInteger(maxResponseBytes) || (maxResponseBytes as number) < 65536)) bad(where, 'maxResponseBytes', 'must be an integer of at least 65536');

  return {
    id,
    baseUrl,
    scopes,
    tagPrefix,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(username !== undefined && password !== undefined ? { username, password } : {}),
    ...(optString(block, where, 'vsys') !== undefined ? { vsys: block['vsys'] as string } : {}),
    ...(optString(block, where, 'target') !== undefined ? { target: block['target'] as string } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(maxResponseBytes !== undefined ? { maxResponseBytes: maxResponseBytes as number } : {}),
    ...(maxTagTimeoutSeconds !== undefined ? { maxTagTimeoutSeconds } : {}),
  };
}
