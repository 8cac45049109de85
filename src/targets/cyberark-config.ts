import { parseDuration, WogateError } from '../domain/index.js';
import { show } from './text.js';

/** The methods PVWA logs on with at `/API/auth/{method}/Logon`. */
export const CYBERARK_AUTH_METHODS = ['CyberArk', 'LDAP', 'RADIUS', 'Windows'] as const;
export type CyberArkAuthMethod = (typeof CYBERARK_AUTH_METHODS)[number];

/** Every Gen2 safe-member permission key. Each one is sent on every add and update, granted or not. */
export const CYBERARK_PERMISSIONS = [
  'useAccounts', 'retrieveAccounts', 'listAccounts', 'addAccounts', 'updateAccountContent', 'updateAccountProperties',
  'initiateCPMAccountManagementOperations', 'specifyNextAccountContent', 'renameAccounts', 'deleteAccounts', 'unlockAccounts',
  'manageSafe', 'manageSafeMembers', 'backupSafe', 'viewAuditLog', 'viewSafeMembers', 'accessWithoutConfirmation',
  'createFolders', 'deleteFolders', 'moveAccountsAndFolders', 'requestsAuthorizationLevel1', 'requestsAuthorizationLevel2',
] as const;
export type CyberArkPermission = (typeof CYBERARK_PERMISSIONS)[number];

/**
 * What a vendor may be given: using and seeing the accounts of the safe. Everything else changes
 * the safe, its accounts or its controls (dual control, members, CPM), and a work order is never
 * a reason to hand that to someone outside the company.
 */
export const VENDOR_PERMISSIONS: readonly CyberArkPermission[] = ['useAccounts', 'listAccounts', 'retrieveAccounts', 'viewAuditLog', 'viewSafeMembers'];

/**
 * The least that lets a vendor connect through PSM: `useAccounts` opens the session without
 * showing the password, `listAccounts` lets them find the account to connect to. Not
 * `retrieveAccounts` (they would see the password and could use it outside PSM, unrecorded) nor
 * `viewSafeMembers`/`viewAuditLog` (who else works on the plant is none of their business).
 */
export const DEFAULT_VENDOR_PERMISSIONS: readonly CyberArkPermission[] = ['useAccounts', 'listAccounts'];

const REFUSED_WHY: Readonly<Partial<Record<CyberArkPermission, string>>> = {
  addAccounts: 'adds accounts to the safe',
  updateAccountContent: 'changes passwords and keys',
  updateAccountProperties: 'changes account properties',
  initiateCPMAccountManagementOperations: 'starts CPM changes and reconciles',
  specifyNextAccountContent: 'chooses the next password',
  renameAccounts: 'renames accounts',
  deleteAccounts: 'deletes accounts',
  unlockAccounts: 'unlocks accounts locked by others',
  manageSafe: 'changes the safe itself',
  manageSafeMembers: 'lets the vendor add members, including themselves without an expiry',
  backupSafe: 'copies the whole safe out',
  accessWithoutConfirmation: 'bypasses the dual control the vault owners configured',
  createFolders: 'changes the safe layout',
  deleteFolders: 'changes the safe layout',
  moveAccountsAndFolders: 'moves accounts out of reach of the safe policy',
  requestsAuthorizationLevel1: 'makes the vendor an approver of access requests',
  requestsAuthorizationLevel2: 'makes the vendor an approver of access requests',
};

/** Safe names: the Vault allows up to 28 characters and refuses these. [I] */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
export const SAFE_NAME = /^(?! )[^\\/:*?"<>|.%&+\u0000-\u001f\u007f]{1,28}(?<! )$/;
/** Vault and directory user names as a path segment and a JSON value can carry them unambiguously. */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
export const MEMBER_NAME = /^(?! )[^\\/:*?"<>|&%\u0000-\u001f\u007f]{1,128}(?<! )$/;
const SEARCH_IN = /^(?:Vault|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?)$/;

export interface CyberArkTargetOptions {
  readonly id: string;
  /** PVWA up to and including /PasswordVault, e.g. https://pvwa.plant.example/PasswordVault. */
  readonly baseUrl: string;
  /** Default CyberArk. */
  readonly authMethod?: CyberArkAuthMethod;
  readonly username: string;
  readonly password: string;
  /** The safes wogate manages; a grant for any other safe is refused. */
  readonly safes: readonly string[];
  /** Where the Vault looks the technician up: 'Vault' (default) or a directory's domain name. */
  readonly searchIn?: string;
  /** What each technician gets on the safe; default DEFAULT_VENDOR_PERMISSIONS. Only VENDOR_PERMISSIONS are accepted. */
  readonly permissions?: readonly CyberArkPermission[];
  /** Standing members of the managed safes (owners, the CPM user): never granted, listed or removed. */
  readonly keepMembers?: readonly string[];
  /** PEM CA bundle trusted for PVWA instead of the system store. */
  readonly caPem?: string;
  /** Whole-call deadline; default 10000. */
  readonly timeoutMs?: number;
  /** Members per page when listing; default 100. */
  readonly pageSize?: number;
}

/**
 * JSON Schema (draft-07) of a target's `cyberark:` block, for config.schema.json. References
 * `#/definitions/secretRef` and `#/definitions/duration` of the main schema.
 */
export const CYBERARK_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'username', 'password', 'safes'],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://[^?#]+$', description: 'PVWA address up to and including /PasswordVault' },
    authMethod: { enum: [...CYBERARK_AUTH_METHODS], description: 'how the service account logs on; default CyberArk' },
    username: { type: 'string', minLength: 1, maxLength: 128, description: 'the service account wogate logs on as' },
    password: { $ref: '#/definitions/secretRef', description: "the service account's password" },
    safes: {
      type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true,
      items: { type: 'string', pattern: SAFE_NAME.source },
      description: 'the safes wogate manages; grants for any other safe are refused',
    },
    searchIn: { type: 'string', pattern: SEARCH_IN.source, description: "where the Vault finds technicians: Vault (default) or a directory's domain" },
    permissions: {
      type: 'array', minItems: 1, uniqueItems: true,
      items: { enum: [...CYBERARK_PERMISSIONS] },
      description: 'what each technician gets on the safe; default [useAccounts, listAccounts]; only use/list/retrieve/view permissions are accepted',
    },
    keepMembers: {
      type: 'array', uniqueItems: true, maxItems: 1000,
      items: { type: 'string', pattern: MEMBER_NAME.source },
      description: 'standing members of the managed safes (owners, the CPM user) that wogate never grants, lists or removes',
    },
    caPem: { $ref: '#/definitions/secretRef', description: 'file: reference to a PEM CA bundle trusted for PVWA instead of the system store' },
    timeout: { $ref: '#/definitions/duration', description: 'deadline for each call to PVWA; default 10s' },
    pageSize: { type: 'integer', minimum: 1, maximum: 1000, description: 'members per page when listing a safe; default 100' },
  },
} as const;

function bad(where: string, field: string, problem: string): never {
  throw new WogateError('CONFIG_INVALID', `${where}.${field} ${problem}`);
}

function strings(where: string, field: string, v: unknown, re: RegExp, what: string): string[] {
  if (!Array.isArray(v)) bad(where, field, 'must be a list');
  return v.map((s: unknown, i) => (typeof s === 'string' && re.test(s) ? s : bad(where, `${field}[${i}]`, `${show(s)} is not ${what}`)));
}

/**
 * Checks a permission list against VENDOR_PERMISSIONS; throws CONFIG_INVALID naming the first
 * permission that is unknown or gives more than a vendor may have. `where` is e.g. "target pam: cyberark".
 */
export function checkVendorPermissions(where: string, v: unknown): CyberArkPermission[] {
  if (!Array.isArray(v) || v.length === 0) bad(where, 'permissions', 'must be a non-empty list');
  const out: CyberArkPermission[] = [];
  for (const [i, p] of v.entries()) {
    if (!(CYBERARK_PERMISSIONS as readonly unknown[]).includes(p)) bad(where, `permissions[${i}]`, `${show(p)} is not a CyberArk safe permission`);
    const perm = p as CyberArkPermission;
    if (!VENDOR_PERMISSIONS.includes(perm)) {
      bad(where, `permissions[${i}]`, `${perm} is refused: it ${REFUSED_WHY[perm] ?? 'is not a vendor permission'} (allowed: ${VENDOR_PERMISSIONS.join(', ')})`);
    }
    if (out.includes(perm)) bad(where, `permissions[${i}]`, `${perm} is listed twice`);
    out.push(perm);
  }
  if (!out.includes('useAccounts') && !out.includes('retrieveAccounts')) {
    bad(where, 'permissions', 'grants no way to use an account: include useAccounts (connect through PSM) or retrieveAccounts');
  }
  return out;
}

/** Shared by the options builder and the constructor, so a caller that skipped the schema still gets CONFIG_INVALID. */
export function checkCyberArkOptions(o: CyberArkTargetOptions): void {
  const where = `target ${o.id}: cyberark`;
  if (o.authMethod !== undefined && !CYBERARK_AUTH_METHODS.includes(o.authMethod)) bad(where, 'authMethod', `${show(o.authMethod)} must be one of ${CYBERARK_AUTH_METHODS.join(', ')}`);
  if (typeof o.username !== 'string' || !MEMBER_NAME.test(o.username)) bad(where, 'username', 'must be a CyberArk user name');
  // Never show the value: it is the password.
  if (typeof o.password !== 'string' || o.password === '') bad(where, 'password', 'must resolve to a non-empty value');
  if (/[\r\n\0]/.test(o.password)) bad(where, 'password', 'contains a line break or NUL (value not shown); check the secret file');
  const safes = strings(where, 'safes', o.safes, SAFE_NAME, 'a safe name (1-28 characters, none of \\ / : * ? " < > | . % & +)');
  if (safes.length === 0) bad(where, 'safes', 'must name at least one safe');
  const lower = safes.map((s) => s.toLowerCase());
  const dup = lower.findIndex((s, i) => lower.indexOf(s) !== i);
  // The Vault compares safe names without case: two spellings would be one safe managed twice.
  if (dup >= 0) bad(where, `safes[${dup}]`, `${show(safes[dup])} is listed twice (safe names are case-insensitive)`);
  if (o.searchIn !== undefined && (typeof o.searchIn !== 'string' || !SEARCH_IN.test(o.searchIn))) bad(where, 'searchIn', `${show(o.searchIn)} must be Vault or a domain name`);
  if (o.permissions !== undefined) checkVendorPermissions(where, o.permissions);
  if (o.keepMembers !== undefined) strings(where, 'keepMembers', o.keepMembers, MEMBER_NAME, 'a member name');
  if (o.caPem !== undefined && !/-----BEGIN CERTIFICATE-----/.test(o.caPem)) bad(where, 'caPem', 'does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)');
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs > 0 && o.timeoutMs <= 600_000)) bad(where, 'timeout', 'must be between 1ms and 10m');
  if (o.pageSize !== undefined && !(Number.isInteger(o.pageSize) && o.pageSize >= 1 && o.pageSize <= 1000)) bad(where, 'pageSize', 'must be an integer from 1 to 1000');
}

type Block = Readonly<Record<string, unknown>>;

/**
 * The `cyberark:` block (schema-checked, secrets resolved to their values, durations as text) →
 * the constructor's options. Throws CONFIG_INVALID naming the field for anything wrong.
 */
export function cyberarkTargetOptions(id: string, block: Block): CyberArkTargetOptions {
  const where = `target ${id}: cyberark`;
  const str = (k: string): string | undefined => {
    const v = block[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') bad(where, k, 'must be a string');
    return v;
  };
  const baseUrl = str('baseUrl') ?? bad(where, 'baseUrl', 'is required');
  if (!/^https?:\/\/[^?#]+$/.test(baseUrl)) bad(where, 'baseUrl', 'must be an http(s) URL without query or fragment');
  let path: string;
  try {
    path = new URL(baseUrl).pathname;
  } catch {
    bad(where, 'baseUrl', 'is not a URL');
  }
  if (!/\/PasswordVault\/?$/i.test(path)) bad(where, 'baseUrl', 'must end with /PasswordVault (the PVWA application path)');
  const timeout = str('timeout');
  const pageSize = block['pageSize'];
  if (pageSize !== undefined && typeof pageSize !== 'number') bad(where, 'pageSize', 'must be an integer');
  const authMethod = str('authMethod');
  const searchIn = str('searchIn');
  const caPem = str('caPem');
  const o: CyberArkTargetOptions = {
    id,
    baseUrl,
    username: str('username') ?? bad(where, 'username', 'is required'),
    password: str('password') ?? bad(where, 'password', 'is required'),
    safes: (block['safes'] ?? bad(where, 'safes', 'is required')) as string[],
    ...(authMethod !== undefined ? { authMethod: authMethod as CyberArkAuthMethod } : {}),
    ...(searchIn !== undefined ? { searchIn } : {}),
    ...(block['permissions'] !== undefined ? { permissions: checkVendorPermissions(where, block['permissions']) } : {}),
    ...(block['keepMembers'] !== undefined ? { keepMembers: block['keepMembers'] as string[] } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    ...(timeout !== undefined ? { timeoutMs: parseDuration(timeout, `${where}.timeout`) } : {}),
    ...(pageSize !== undefined ? { pageSize } : {}),
  };
  checkCyberArkOptions(o);
  return o;
}
