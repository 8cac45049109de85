import { parseDuration } from '../domain/duration.js';
import { WogateError } from '../domain/errors.js';
import { CRITICALITIES } from '../domain/register.js';
import { CANONICAL_STATUSES, ORDER_TYPES } from '../domain/workorder.js';
import { PLANT, type SapReviewOptions } from './sap-api.js';
import type { SapAuth } from './sap-client.js';
import type { SapAssetOptions, SapMappingOptions } from './sap-mapping.js';
import type { SapWebhookAuth } from './sap-webhook.js';
import type { SapSourceOptions } from './sap.js';

const duration = { $ref: '#/definitions/duration' };
const secret = { $ref: '#/definitions/secretRef' };
const statusCode = { type: 'string', pattern: '^[A-Za-z0-9]{1,8}$' };
const fieldName = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,59}$' };
const servicePath = { type: 'string', pattern: '^/[A-Za-z0-9_/.-]*$' };
const partnerFunction = { type: 'string', pattern: '^[A-Za-z0-9]{1,2}$' };
/** Plants, order types: CHAR 4 keys. */
const key4 = { type: 'string', pattern: '^[A-Za-z0-9]{1,4}$' };

/**
 * JSON Schema (draft-07) of the `sap:` block of a `kind: sap` source, to be placed under
 * definitions.source of config.schema.json. Secrets are `#/definitions/secretRef` references.
 */
export const SAP_SOURCE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'auth', 'webhook'],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://[^?#\\s]+$', description: 'S/4HANA origin, e.g. https://my-s4.example.com' },
    servicePath: { ...servicePath, description: 'default /sap/opu/odata/sap/API_MAINTENANCEORDER' },
    equipmentServicePath: { ...servicePath, description: 'default /sap/opu/odata/sap/API_EQUIPMENT' },
    sapClient: { type: 'string', pattern: '^[0-9]{3}$', description: 'sent as sap-client=<client>' },
    auth: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'username', 'password'],
          properties: { type: { const: 'basic' }, username: { type: 'string', minLength: 1, maxLength: 64 }, password: secret },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'tokenUrl', 'clientId', 'clientSecret'],
          properties: {
            type: { const: 'oauth2' },
            tokenUrl: { type: 'string', pattern: '^https?://[^?#\\s]+$' },
            clientId: { type: 'string', minLength: 1, maxLength: 256 },
            clientSecret: secret,
            scope: { type: 'string', minLength: 1, maxLength: 1024 },
          },
        },
      ],
    },
    // API Business Hub sandbox only: sent as the APIKey header.
    apiKey: secret,
    timeout: duration,
    maxResponseBytes: { type: 'integer', minimum: 65536, maximum: 67108864 },
    pageSize: { type: 'integer', minimum: 1, maximum: 5000 },
    plants: { type: 'array', maxItems: 100, uniqueItems: true, items: key4 },
    pollOverlap: duration,
    openLookback: duration,
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['auth'],
      properties: {
        auth: {
          oneOf: [
            {
              type: 'object',
              additionalProperties: false,
              required: ['type', 'credentials'],
              properties: {
                type: { const: 'basic' },
                credentials: {
                  type: 'array',
                  minItems: 1,
                  maxItems: 4,
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['username', 'password'],
                    properties: { username: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^:]+$' }, password: secret },
                  },
                },
              },
            },
            {
              type: 'object',
              additionalProperties: false,
              required: ['type', 'tokens'],
              properties: { type: { const: 'bearer' }, tokens: { type: 'array', minItems: 1, maxItems: 4, items: secret } },
            },
          ],
        },
        tolerance: duration,
        clockSkew: duration,
        maxBodyBytes: { type: 'integer', minimum: 256, maximum: 10485760 },
      },
    },
    mapping: {
      type: 'object',
      additionalProperties: false,
      properties: {
        statusRules: {
          type: 'array',
          minItems: 1,
          maxItems: 100,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['status'],
            anyOf: [{ required: ['system'] }, { required: ['user'] }],
            properties: {
              system: { type: 'array', minItems: 1, maxItems: 10, items: statusCode },
              user: { type: 'array', minItems: 1, maxItems: 10, items: statusCode },
              status: { enum: [...CANONICAL_STATUSES] },
            },
          },
        },
        window: { enum: ['basic', 'scheduled'] },
        assetIdFrom: { enum: ['equipment', 'functionalLocation', 'equipmentOrFunctionalLocation'] },
        includeObjectList: { type: 'boolean' },
        vendorPartnerFunction: partnerFunction,
        technicianPartnerFunctions: { type: 'array', minItems: 1, maxItems: 10, items: partnerFunction },
        approvals: {
          oneOf: [
            { type: 'object', additionalProperties: false, required: ['from'], properties: { from: { const: 'release' }, systemStatus: statusCode } },
            {
              type: 'object',
              additionalProperties: false,
              required: ['from', 'userStatuses'],
              properties: { from: { const: 'userStatus' }, userStatuses: { type: 'array', minItems: 1, maxItems: 10, items: statusCode } },
            },
            { type: 'object', additionalProperties: false, required: ['from'], properties: { from: { const: 'none' } } },
          ],
        },
        typeField: { enum: ['MaintenanceOrderType', 'MaintenanceActivityType', 'MaintPriority'] },
        typeMap: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9]{1,4}$' }, additionalProperties: { enum: [...ORDER_TYPES] } },
        defaultType: { enum: [...ORDER_TYPES] },
        stripLeadingZeros: { type: 'boolean' },
      },
    },
    assets: {
      type: 'object',
      additionalProperties: false,
      properties: {
        entitySet: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,59}$' },
        classField: fieldName,
        criticalityField: fieldName,
        criticalityMap: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9]{1,4}$' }, additionalProperties: { enum: [...CRITICALITIES] } },
        zoneFields: { type: 'array', minItems: 1, maxItems: 10, items: fieldName },
      },
    },
    writeBack: {
      type: 'object',
      additionalProperties: false,
      properties: {
        textObjectType: { type: 'string', pattern: '^[A-Za-z0-9]{1,4}$', description: 'text ID of the order long text; default KOPF' },
        language: { type: 'string', pattern: '^[A-Za-z0-9]{1,4}$', description: 'default EN' },
      },
    },
    review: {
      type: 'object',
      additionalProperties: false,
      description: 'break-glass review orders, when this source is breakGlass.reviewSource',
      properties: {
        orderType: { ...key4, description: 'MaintenanceOrderType of review orders, e.g. PM01 or YA01; required for a review source' },
        plant: { ...key4, description: 'MaintenancePlant; default breakGlass.reviewSite, else the first of plants' },
        planningPlant: { ...key4, description: 'MaintenancePlanningPlant; default the plant' },
        priority: { type: 'string', pattern: '^[A-Za-z0-9]$', description: 'MaintPriority; default the order type\'s' },
      },
    },
  },
} as const;

/** The `sap:` block as the schema admits it, secrets already resolved. */
interface SapBlock {
  baseUrl: string;
  servicePath?: string;
  equipmentServicePath?: string;
  sapClient?: string;
  auth: SapAuth;
  apiKey?: string;
  timeout?: string;
  maxResponseBytes?: number;
  pageSize?: number;
  plants?: string[];
  pollOverlap?: string;
  openLookback?: string;
  webhook: { auth: SapWebhookAuth; tolerance?: string; clockSkew?: string; maxBodyBytes?: number };
  mapping?: SapMappingOptions;
  assets?: SapAssetOptions;
  writeBack?: { textObjectType?: string; language?: string };
  review?: SapReviewOptions;
}

/**
 * The adapter's options from its schema-checked config block (secrets resolved): durations become
 * numbers, and the webhook tolerance is held to 1 s … 1 h, inside the day replay ids are remembered.
 */
export function sapSourceOptions(id: string, block: Readonly<Record<string, unknown>>, where = `source ${id}`): SapSourceOptions {
  const b = block as unknown as SapBlock;
  const ms = (v: string | undefined, key: string): number | undefined => (v === undefined ? undefined : parseDuration(v, `${where}: ${key}`));
  const tolerance = ms(b.webhook.tolerance, 'webhook.tolerance') ?? 300_000;
  if (tolerance < 1000 || tolerance > 3_600_000) throw new WogateError('CONFIG_INVALID', `${where}: webhook.tolerance must be between 1s and 1h`);
  const skew = ms(b.webhook.clockSkew, 'webhook.clockSkew') ?? 60_000;
  if (skew > 600_000) throw new WogateError('CONFIG_INVALID', `${where}: webhook.clockSkew must be at most 10m`);
  const { timeout, pollOverlap, openLookback, webhook, ...rest } = b;
  const timeoutMs = ms(timeout, 'timeout');
  const pollOverlapMs = ms(pollOverlap, 'pollOverlap');
  const openLookbackMs = ms(openLookback, 'openLookback');
  return {
    ...rest,
    id,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(pollOverlapMs !== undefined ? { pollOverlapMs } : {}),
    ...(openLookbackMs !== undefined ? { openLookbackMs } : {}),
    webhook: {
      auth: webhook.auth,
      toleranceSeconds: tolerance / 1000,
      clockSkewSeconds: skew / 1000,
      ...(webhook.maxBodyBytes !== undefined ? { maxBodyBytes: webhook.maxBodyBytes } : {}),
    },
  };
}

/**
 * Why this `sap:` block (at config path `at`, e.g. /sources/2/sap) can't open break-glass review
 * orders, or undefined when it can. Checked at load, so a missing setting shows at start and not
 * at the first emergency. SAP has no default order type, and wogate can't guess one: order types
 * are customizing (PM01 on-premise, YA01 in S/4HANA Cloud best practice, or the plant's own).
 */
export function sapReviewProblem(block: Readonly<Record<string, unknown>>, reviewSite: string | undefined, at: string): string | undefined {
  const b = block as unknown as SapBlock;
  if (b.review?.orderType === undefined) {
    return `${at}/review/orderType: required when this source is /breakGlass/reviewSource (the MaintenanceOrderType of review orders, e.g. PM01 or YA01: order types are customizing, so there is no default)`;
  }
  if (reviewSite !== undefined && !PLANT.test(reviewSite)) return `/breakGlass/reviewSite: "${reviewSite}" is not an SAP plant (1 to 4 letters or digits)`;
  if (reviewSite === undefined && b.review.plant === undefined && (b.plants ?? []).length === 0) {
    return `/breakGlass/reviewSite: SAP needs a plant for review orders; set /breakGlass/reviewSite, ${at}/review/plant or ${at}/plants`;
  }
  return undefined;
}
