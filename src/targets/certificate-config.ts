import path from 'node:path';
import { parseDuration, WogateError } from '../domain/index.js';
import type { CertificateTargetOptions } from './certificate.js';
import { VPN_PROFILE_SCHEMA, vpnProfileOptions } from './certificate-vpn.js';

const MOUNT = '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$';
const URL_PATTERN = '^https?://[^?#]+$';

/**
 * JSON Schema (draft-07) of a target's `certificate:` block, for config.schema.json. References
 * `#/definitions/secretRef` and `#/definitions/duration` of the main schema. Which of `local` and
 * `vault` must be present follows from `issuer`; certificateTargetOptions checks that.
 */
export const CERTIFICATE_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer'],
  properties: {
    issuer: { enum: ['local', 'vault'], description: 'local: the embedded CA in a state directory; vault: a Vault PKI mount' },
    clockSkew: { $ref: '#/definitions/duration', description: "issuer local only: notBefore is the window's start minus this; default 2m, at most 1h" },
    local: {
      type: 'object',
      additionalProperties: false,
      required: ['dir', 'passphrase'],
      description: 'the embedded CA (issuer: local)',
      properties: {
        dir: { type: 'string', minLength: 2, pattern: '^/', description: 'absolute path of the state directory: CA key and certificate, index, CRL' },
        passphrase: { $ref: '#/definitions/secretRef', description: 'encrypts the CA private key at rest; at least 12 characters' },
        keyBits: { enum: [2048, 3072, 4096], description: 'RSA size of each issued key; default 3072' },
        caKeyBits: { enum: [2048, 3072, 4096], description: 'RSA size of the CA key, when the CA is created; default 3072' },
        caValidity: { $ref: '#/definitions/duration', description: 'lifetime of the CA certificate, when it is created; default 1825d' },
        caCommonName: { type: 'string', minLength: 1, maxLength: 64, description: 'CA subject CN, when it is created' },
        organization: { type: 'string', minLength: 1, maxLength: 64, description: 'CA subject O, when it is created; default wogate' },
        crlUrl: { type: 'string', pattern: URL_PATTERN, description: "public URL of this target's CRL, written into every certificate (e.g. https://wogate.example/pki/<id>/crl)" },
        crlValidity: { $ref: '#/definitions/duration', description: 'how long each CRL is valid (nextUpdate); re-signed at half; default 1d' },
      },
    },
    vault: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'role'],
      description: 'a Vault PKI mount (issuer: vault)',
      properties: {
        address: { type: 'string', pattern: URL_PATTERN, description: "Vault's address, e.g. https://vault.example:8200" },
        token: { $ref: '#/definitions/secretRef', description: 'a Vault token (or use appRole)' },
        appRole: {
          type: 'object',
          additionalProperties: false,
          required: ['roleId', 'secretId'],
          description: 'AppRole login instead of a token',
          properties: {
            roleId: { $ref: '#/definitions/secretRef', description: 'the role_id' },
            secretId: { $ref: '#/definitions/secretRef', description: 'the secret_id' },
            mount: { type: 'string', pattern: MOUNT, description: 'AppRole auth mount; default approle' },
          },
        },
        namespace: { type: 'string', pattern: MOUNT, description: 'Vault Enterprise namespace' },
        mount: { type: 'string', pattern: MOUNT, description: 'PKI mount path; default pki' },
        role: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'the PKI role certificates are issued with' },
        ou: { type: 'string', minLength: 1, maxLength: 64, description: "the OU the role stamps (role parameter ou) marking wogate's certificates; default wogate" },
        caPem: { $ref: '#/definitions/secretRef', description: "file: reference to a PEM bundle trusted for Vault's TLS instead of the system store" },
        timeout: { $ref: '#/definitions/duration', description: 'deadline for each call to Vault; default 10s' },
      },
    },
    vpnProfile: VPN_PROFILE_SCHEMA,
  },
} as const;

interface CertificateBlock {
  issuer?: unknown;
  clockSkew?: string;
  vpnProfile?: unknown;
  local?: {
    dir?: unknown; passphrase?: unknown; keyBits?: number; caKeyBits?: number; caValidity?: string;
    caCommonName?: string; organization?: string; crlUrl?: string; crlValidity?: string;
  };
  vault?: {
    address?: unknown; token?: string; appRole?: { roleId: string; secretId: string; mount?: string };
    namespace?: string; mount?: string; role?: unknown; ou?: string; caPem?: string; timeout?: string;
  };
}

/**
 * Turns a schema-checked `certificate:` block (secrets resolved, durations as text) into the
 * target's options; throws CONFIG_INVALID naming the field for what the schema cannot express.
 * `onIssued` is wired by the runtime, not the config.
 */
export function certificateTargetOptions(id: string, block: Readonly<Record<string, unknown>>): CertificateTargetOptions {
  const where = `target ${id}: certificate`;
  const bad = (field: string, problem: string): never => {
    throw new WogateError('CONFIG_INVALID', `${where}.${field} ${problem}`);
  };
  const b = block as CertificateBlock;
  const ms = (v: string | undefined, field: string, min: number, max: number, range: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = parseDuration(v, `${where}.${field}`);
    if (n < min || n > max) bad(field, `must be between ${range}`);
    return n;
  };
  const clockSkewMs = ms(b.clockSkew, 'clockSkew', 0, 3_600_000, '0s and 1h');
  const common = {
    id,
    ...(clockSkewMs !== undefined ? { clockSkewMs } : {}),
    ...(b.vpnProfile !== undefined ? { vpnProfile: vpnProfileOptions(where, b.vpnProfile) } : {}),
  };

  if (b.issuer === 'local') {
    const l = b.local ?? bad('local', 'is required with issuer: local');
    if (b.vault !== undefined) bad('vault', 'must not be set with issuer: local');
    if (typeof l.dir !== 'string' || !path.isAbsolute(l.dir)) bad('local.dir', 'must be an absolute path');
    if (typeof l.passphrase !== 'string' || l.passphrase.length < 12) bad('local.passphrase', 'must be at least 12 characters');
    if (l.crlUrl !== undefined && !/^https?:\/\/[^?#]+$/.test(l.crlUrl)) bad('local.crlUrl', 'must be an http(s) URL without query or fragment');
    const caValidityMs = ms(l.caValidity, 'local.caValidity', 86_400_000, 30 * 365 * 86_400_000, '1d and 10950d');
    const crlValidityMs = ms(l.crlValidity, 'local.crlValidity', 60_000, 31 * 86_400_000, '1m and 31d');
    return {
      ...common,
      issuer: {
        kind: 'local',
        dir: l.dir as string,
        passphrase: l.passphrase as string,
        ...(l.keyBits !== undefined ? { keyBits: l.keyBits } : {}),
        ...(l.caKeyBits !== undefined ? { caKeyBits: l.caKeyBits } : {}),
        ...(caValidityMs !== undefined ? { caValidityMs } : {}),
        ...(l.caCommonName !== undefined ? { caCommonName: l.caCommonName } : {}),
        ...(l.organization !== undefined ? { organization: l.organization } : {}),
        ...(l.crlUrl !== undefined ? { crlUrl: l.crlUrl } : {}),
        ...(crlValidityMs !== undefined ? { crlValidityMs } : {}),
      },
    };
  }
  if (b.issuer === 'vault') {
    const v = b.vault ?? bad('vault', 'is required with issuer: vault');
    if (b.clockSkew !== undefined) bad('clockSkew', "applies to issuer: local only (Vault backdates by its role's not_before_duration)");
    if (b.local !== undefined) bad('local', 'must not be set with issuer: vault');
    if (typeof v.address !== 'string' || !/^https?:\/\/[^?#]+$/.test(v.address)) bad('vault.address', 'must be an http(s) URL without query or fragment');
    if (typeof v.role !== 'string' || v.role === '') bad('vault.role', 'is required');
    if ((v.token === undefined) === (v.appRole === undefined)) bad('vault', 'needs exactly one of token and appRole');
    if (v.token !== undefined && v.token.trim() === '') bad('vault.token', 'is empty');
    if (v.appRole !== undefined && (v.appRole.roleId.trim() === '' || v.appRole.secretId.trim() === '')) bad('vault.appRole', 'needs a non-empty roleId and secretId');
    const timeoutMs = ms(v.timeout, 'vault.timeout', 100, 300_000, '100ms and 5m');
    return {
      ...common,
      issuer: {
        kind: 'vault',
        address: v.address as string,
        role: v.role as string,
        ...(v.token !== undefined ? { token: v.token } : {}),
        ...(v.appRole !== undefined ? { appRole: v.appRole } : {}),
        ...(v.namespace !== undefined ? { namespace: v.namespace } : {}),
        ...(v.mount !== undefined ? { mount: v.mount } : {}),
        ...(v.ou !== undefined ? { ou: v.ou } : {}),
        ...(v.caPem !== undefined ? { caPem: v.caPem } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      },
    };
  }
  return bad('issuer', `${JSON.stringify(b.issuer)} must be local or vault`);
}
