import { CANONICAL_STATUSES, CRITICALITIES, ORDER_TYPES, parseDuration, WogateError } from '../domain/index.js';
import type { MaximoListField } from './maximo-mapping.js';
import type { MaximoSourceOptions } from './maximo.js';

const listField = {
  type: 'object',
  additionalProperties: false,
  required: ['select', 'path'],
  properties: {
    select: { type: 'string', minLength: 1, maxLength: 500 },
    path: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
    idField: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
    separator: { type: 'string', minLength: 1, maxLength: 5 },
  },
} as const;

const attribute = { type: 'string', pattern: '^[A-Za-z0-9_.]+$' } as const;

/**
 * JSON Schema (draft-07) of a source's `maximo:` block, for config.schema.json under
 * `definitions.source.properties.maximo`. References `#/definitions/secretRef` and
 * `#/definitions/duration` of the main schema.
 */
export const MAXIMO_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'apiKey', 'webhook'],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://[^?#]+$', description: 'up to /maximo/api (MAS) or /maximo/oslc (7.6)' },
    apiKey: { $ref: '#/definitions/secretRef' },
    objectStructure: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
    pageSize: { type: 'integer', minimum: 1, maximum: 1000 },
    timeout: { $ref: '#/definitions/duration' },
    maxResponseBytes: { type: 'integer', minimum: 65536, maximum: 268435456 },
    maxPages: { type: 'integer', minimum: 1, maximum: 1000000 },
    sites: { type: 'array', items: { type: 'string', pattern: '^[^"\\\\%*/]+$' }, uniqueItems: true },
    where: { type: 'string', maxLength: 2000 },
    openWhere: { type: 'string', maxLength: 2000 },
    pollOverlap: { $ref: '#/definitions/duration' },
    idFormat: { enum: ['site/wonum', 'wonum'] },
    revision: { enum: ['rowstamp', 'changedate'] },
    statusMap: { type: 'object', additionalProperties: { enum: [...CANONICAL_STATUSES] } },
    typeMap: { type: 'object', additionalProperties: { enum: [...ORDER_TYPES] } },
    defaultType: { enum: [...ORDER_TYPES] },
    fields: {
      type: 'object',
      additionalProperties: false,
      properties: {
        vendor: attribute,
        type: attribute,
        asset: attribute,
        multiAssets: { oneOf: [listField, { const: false }] },
        technicians: listField,
        approvals: {
          oneOf: [{
            type: 'object',
            additionalProperties: false,
            required: ['select', 'path'],
            properties: {
              select: { type: 'string', minLength: 1, maxLength: 500 },
              path: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
              statuses: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
            },
          }, { const: false }],
        },
        windowStart: { type: 'array', items: attribute, minItems: 1 },
        windowEnd: { type: 'array', items: attribute, minItems: 1 },
      },
    },
    qualifyAssetsBySite: { type: 'boolean' },
    assets: {
      type: 'object',
      additionalProperties: false,
      properties: {
        objectStructure: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
        where: { type: 'string', maxLength: 2000 },
        classAttribute: attribute,
        classMap: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
        criticalityAttribute: attribute,
        criticalityMap: { type: 'object', additionalProperties: { enum: [...CRITICALITIES] } },
      },
    },
    writeBack: {
      type: 'object',
      additionalProperties: false,
      properties: {
        logType: { type: 'string', pattern: '^[A-Za-z0-9_]{1,16}$' },
        clientViewable: { type: 'boolean' },
      },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      anyOf: [{ required: ['basic'] }, { required: ['header'] }],
      properties: {
        basic: {
          type: 'array',
          minItems: 1,
          maxItems: 4,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['username', 'password'],
            properties: { username: { type: 'string', pattern: '^[^:]+$' }, password: { $ref: '#/definitions/secretRef' } },
          },
        },
        header: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'secrets'],
          properties: {
            name: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
            secrets: { type: 'array', minItems: 1, maxItems: 4, items: { $ref: '#/definitions/secretRef' } },
          },
        },
        maxAge: { $ref: '#/definitions/duration' },
        futureTolerance: { $ref: '#/definitions/duration' },
        maxBodyBytes: { type: 'integer', minimum: 1024, maximum: 10485760 },
      },
    },
  },
} as const;

type Block = Readonly<Record<string, unknown>>;

/**
 * The config block (schema-checked, secrets resolved, durations as text) → MaximoSourceOptions.
 * The checks here repeat only what the types need, so a caller that skipped the schema still
 * gets CONFIG_INVALID naming the key rather than a crash later.
 */
export function maximoOptionsFromConfig(id: string, block: Block): MaximoSourceOptions {
  const where = `source ${id}: maximo`;
  const r = reader(block, where);
  const f = r.obj('fields');
  const a = r.obj('assets');
  const w = r.obj('writeBack');
  const h = r.obj('webhook') ?? bad(where, 'webhook', 'is required');
  const hook = reader(h, `${where}.webhook`);
  const header = hook.obj('header');
  const fields = f ? reader(f, `${where}.fields`) : undefined;
  const assets = a ? reader(a, `${where}.assets`) : undefined;
  const wb = w ? reader(w, `${where}.writeBack`) : undefined;
  return strip({
    id,
    baseUrl: r.str('baseUrl') ?? bad(where, 'baseUrl', 'is required'),
    apiKey: r.str('apiKey') ?? bad(where, 'apiKey', 'is required'),
    objectStructure: r.str('objectStructure'),
    pageSize: r.num('pageSize'),
    timeoutMs: r.dur('timeout'),
    maxResponseBytes: r.num('maxResponseBytes'),
    maxPages: r.num('maxPages'),
    sites: r.strs('sites'),
    where: r.str('where'),
    openWhere: r.str('openWhere'),
    pollOverlapMs: r.dur('pollOverlap'),
    idFormat: r.oneOf('idFormat', ['site/wonum', 'wonum'] as const),
    revision: r.oneOf('revision', ['rowstamp', 'changedate'] as const),
    statusMap: r.map('statusMap', CANONICAL_STATUSES),
    typeMap: r.map('typeMap', ORDER_TYPES),
    defaultType: r.oneOf('defaultType', ORDER_TYPES),
    fields: fields && strip({
      vendor: fields.str('vendor'),
      type: fields.str('type'),
      asset: fields.str('asset'),
      multiAssets: fields.raw('multiAssets') === false ? false : fields.list('multiAssets'),
      technicians: fields.list('technicians'),
      approvals: fields.raw('approvals') === false ? false : approvals(fields.obj('approvals'), `${where}.fields.approvals`),
      windowStart: fields.strs('windowStart'),
      windowEnd: fields.strs('windowEnd'),
    }),
    qualifyAssetsBySite: r.bool('qualifyAssetsBySite'),
    assets: assets && strip({
      objectStructure: assets.str('objectStructure'),
      where: assets.str('where'),
      classAttribute: assets.str('classAttribute'),
      classMap: assets.map('classMap'),
      criticalityAttribute: assets.str('criticalityAttribute'),
      criticalityMap: assets.map('criticalityMap', CRITICALITIES),
    }),
    writeBack: wb && strip({ logType: wb.str('logType'), clientViewable: wb.bool('clientViewable') }),
    webhook: strip({
      basic: (hook.raw('basic') as unknown[] | undefined)?.map((c, i) => {
        const cr = reader(isBlock(c) ? c : bad(where, `webhook.basic[${i}]`, 'is not an object'), `${where}.webhook.basic[${i}]`);
        return { username: cr.str('username') ?? bad(where, `webhook.basic[${i}].username`, 'is required'), password: cr.str('password') ?? bad(where, `webhook.basic[${i}].password`, 'is required') };
      }),
      header: header && {
        name: reader(header, `${where}.webhook.header`).str('name') ?? bad(where, 'webhook.header.name', 'is required'),
        secrets: reader(header, `${where}.webhook.header`).strs('secrets') ?? bad(where, 'webhook.header.secrets', 'is required'),
      },
      maxAgeMs: hook.dur('maxAge'),
      futureToleranceMs: hook.dur('futureTolerance'),
      maxBodyBytes: hook.num('maxBodyBytes'),
    }),
  }) as unknown as MaximoSourceOptions;
}

function approvals(block: Block | undefined, where: string): { select: string; path: string; statuses?: string[] } | undefined {
  if (block === undefined) return undefined;
  const r = reader(block, where);
  return strip({
    select: r.str('select') ?? bad(where, 'select', 'is required'),
    path: r.str('path') ?? bad(where, 'path', 'is required'),
    statuses: r.strs('statuses'),
  });
}

function bad(where: string, key: string, problem: string): never {
  throw new WogateError('CONFIG_INVALID', `${where}.${key} ${problem}`);
}

function isBlock(v: unknown): v is Block {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Stripped<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & { [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined> };

/** exactOptionalPropertyTypes: absent keys must be absent, not undefined. */
function strip<T extends Record<string, unknown>>(o: T): Stripped<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Stripped<T>;
}

function reader(block: Block, where: string) {
  const raw = (k: string): unknown => (Object.hasOwn(block, k) ? block[k] : undefined);
  const typed = <T>(k: string, ok: (v: unknown) => v is T, what: string): T | undefined => {
    const v = raw(k);
    if (v === undefined || v === null) return undefined;
    return ok(v) ? v : bad(where, k, `must be ${what}`);
  };
  const isStr = (v: unknown): v is string => typeof v === 'string';
  return {
    raw,
    str: (k: string) => typed(k, isStr, 'a string'),
    num: (k: string) => typed(k, (v): v is number => typeof v === 'number' && Number.isFinite(v), 'a number'),
    bool: (k: string) => typed(k, (v): v is boolean => typeof v === 'boolean', 'true or false'),
    obj: (k: string) => typed(k, isBlock, 'an object'),
    strs: (k: string) => typed(k, (v): v is string[] => Array.isArray(v) && v.every(isStr), 'a list of strings'),
    dur: (k: string) => {
      const v = typed(k, (x): x is string | number => typeof x === 'string' || typeof x === 'number', 'a duration');
      return v === undefined ? undefined : parseDuration(v, `${where}.${k}`);
    },
    oneOf: <T extends string>(k: string, allowed: readonly T[]) =>
      typed(k, (v): v is T => typeof v === 'string' && (allowed as readonly string[]).includes(v), `one of ${allowed.join(', ')}`),
    map: <T extends string>(k: string, allowed?: readonly T[]) =>
      typed(k, (v): v is Record<string, T> => isBlock(v) && Object.values(v).every((x) => typeof x === 'string' && (allowed === undefined || (allowed as readonly string[]).includes(x))),
        allowed ? `a map to ${allowed.join(', ')}` : 'a map of strings'),
    list: (k: string): MaximoListField | undefined => {
      const v = typed(k, isBlock, 'an object with select and path');
      if (v === undefined) return undefined;
      const l = reader(v, `${where}.${k}`);
      return strip({
        select: l.str('select') ?? bad(where, `${k}.select`, 'is required'),
        path: l.str('path') ?? bad(where, `${k}.path`, 'is required'),
        idField: l.str('idField'),
        separator: l.str('separator'),
      }) as MaximoListField;
    },
  };
}
