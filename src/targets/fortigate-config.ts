import { parseDuration, WogateError } from '../domain/index.js';
import type { FortiGateScope, FortiGateTargetOptions } from './fortigate.js';
import { FLOW_PROPERTIES, IPV4_PATTERN } from './text.js';

/** FortiOS object names are at most 79 characters; this subset needs no escaping anywhere (URL path, CLI, logs). */
export const FORTIOS_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 ._@+:()-]{0,78}$';

/**
 * JSON Schema (draft-07) of a target's `fortigate:` block, for config.schema.json. References
 * `#/definitions/secretRef` and `#/definitions/duration` of the main schema.
 */
export const FORTIGATE_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'token', 'scopes'],
  properties: {
    baseUrl: {
      type: 'string',
      pattern: '^https?://[^?#]+$',
      description: 'the FortiGate management address, e.g. https://fw1.plant.example:8443 (without /api/v2)',
    },
    token: { $ref: '#/definitions/secretRef', description: 'REST API admin token (System > Administrators > REST API Admin), sent as Authorization: Bearer' },
    vdom: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,31}$', description: 'VDOM the groups and addresses live in; omitted: the admin\'s default VDOM' },
    caPem: { $ref: '#/definitions/secretRef', description: 'PEM CA certificate (file:/path) that signed the FortiGate\'s HTTPS certificate, trusted instead of the system store' },
    timeout: { $ref: '#/definitions/duration', description: 'deadline of each API call; default 10s' },
    saveConfig: { type: 'boolean', description: 'call /api/v2/monitor/system/config/save after each change; needed when the FortiGate runs with cfg-save manual or revert' },
    placeholderMember: {
      type: 'string',
      pattern: FORTIOS_NAME_PATTERN,
      description: 'address kept in a managed group so it is never empty (FortiOS refuses an empty group); default "none" (0.0.0.0/32)',
    },
    maxGroupMembers: { type: 'integer', minimum: 2, maximum: 10000, description: 'members an address group may hold on this FortiGate; default 255' },
    scopes: {
      type: 'array',
      minItems: 1,
      description: 'which address group opens which asset flow: the firewall policy with srcaddr = group allows exactly this destination and service',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'port', 'protocol', 'group'],
        properties: {
          ...FLOW_PROPERTIES,
          group: { type: 'string', pattern: FORTIOS_NAME_PATTERN, description: 'firewall address group (srcaddr of the policy) wogate adds technician addresses to' },
        },
      },
    },
  },
} as const;

type Block = Readonly<Record<string, unknown>>;

function bad(id: string, key: string, problem: string): never {
  throw new WogateError('CONFIG_INVALID', `target ${id}: fortigate.${key} ${problem}`);
}

function isBlock(v: unknown): v is Block {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The `fortigate:` block (schema-checked, secrets resolved, durations as text) → the constructor's
 * options. Repeats the checks the types need, and adds the ones a schema can't express: two
 * scopes for one flow, or two flows sharing a group (a grant for one would open the other).
 */
export function fortigateTargetOptions(id: string, block: Block): FortiGateTargetOptions {
  const get = (k: string): unknown => (Object.hasOwn(block, k) ? block[k] : undefined);
  const str = (k: string, required = false): string | undefined => {
    const v = get(k);
    if (v === undefined || v === null) return required ? bad(id, k, 'is required') : undefined;
    return typeof v === 'string' && v !== '' ? v : bad(id, k, 'must be a non-empty string');
  };
  const timeout = get('timeout');
  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    if (typeof timeout !== 'string' && typeof timeout !== 'number') bad(id, 'timeout', 'must be a duration such as 10s');
    timeoutMs = parseDuration(timeout, `target ${id}: fortigate.timeout`);
    if (timeoutMs <= 0) bad(id, 'timeout', 'must be longer than 0');
  }
  const save = get('saveConfig');
  if (save !== undefined && typeof save !== 'boolean') bad(id, 'saveConfig', 'must be true or false');
  const max = get('maxGroupMembers');
  if (max !== undefined && !(typeof max === 'number' && Number.isInteger(max) && max >= 2)) bad(id, 'maxGroupMembers', 'must be an integer of at least 2');

  const rawScopes = get('scopes');
  if (!Array.isArray(rawScopes) || rawScopes.length === 0) bad(id, 'scopes', 'must list at least one { address, port, protocol, group }');
  const scopes = rawScopes.map((s: unknown, i): FortiGateScope => {
    const at = `scopes[${i}]`;
    if (!isBlock(s)) return bad(id, at, 'must be an object { address, port, protocol, group }');
    const { address, port, protocol, group } = s;
    if (typeof address !== 'string' || !new RegExp(IPV4_PATTERN).test(address)) bad(id, `${at}.address`, 'must be a dotted-quad IPv4 address');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) bad(id, `${at}.port`, 'must be a port between 1 and 65535');
    if (protocol !== 'tcp' && protocol !== 'udp') bad(id, `${at}.protocol`, 'must be tcp or udp');
    if (typeof group !== 'string' || !new RegExp(FORTIOS_NAME_PATTERN).test(group)) bad(id, `${at}.group`, `must be a FortiOS address group name matching ${FORTIOS_NAME_PATTERN}`);
    return { address, port, protocol, group };
  });
  checkScopes(id, scopes);

  const out: { -readonly [K in keyof FortiGateTargetOptions]: FortiGateTargetOptions[K] } = {
    id,
    baseUrl: str('baseUrl', true) as string,
    token: str('token', true) as string,
    scopes,
  };
  const vdom = str('vdom');
  const caPem = str('caPem');
  const placeholder = str('placeholderMember');
  if (vdom !== undefined) out.vdom = vdom;
  if (caPem !== undefined) out.caPem = caPem;
  if (placeholder !== undefined) out.placeholderMember = placeholder;
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  if (save !== undefined) out.saveConfig = save as boolean;
  if (max !== undefined) out.maxGroupMembers = max as number;
  return out;
}

/**
 * One group per flow and one flow per group. A group shared by two flows would make a grant for
 * one open both (the policies of both allow the group), and a revoke of one close both.
 */
export function checkScopes(id: string, scopes: readonly FortiGateScope[]): void {
  const flows = new Map<string, number>();
  const groups = new Map<string, number>();
  scopes.forEach((s, i) => {
    const flow = `${s.address}:${s.port}/${s.protocol}`;
    const prior = flows.get(flow);
    if (prior !== undefined) bad(id, `scopes[${i}]`, `maps ${flow} again (already scopes[${prior}]); one flow, one group`);
    const sameGroup = groups.get(s.group.toLowerCase());
    if (sameGroup !== undefined) {
      bad(id, `scopes[${i}].group`, `"${s.group}" is already the group of scopes[${sameGroup}]: a grant for one flow would open the other; give each flow its own group and policy`);
    }
    flows.set(flow, i);
    groups.set(s.group.toLowerCase(), i);
  });
}
