import { WogateError, type CanonicalStatus, type Criticality, type OrderType } from '../domain/index.js';
import { getPath } from './mapping.js';
import { MaximoApi } from './maximo-api.js';
import { maximoOptionsFromConfig } from './maximo-config.js';
import {
  isCompleteRecord, mapMaximoRecord, MAXIMO_DEFAULT_CRITICALITY_MAP, MAXIMO_DEFAULT_STATUS_MAP, MAXIMO_DEFAULT_TYPE_MAP, orderKeyOf,
  type MaximoAssetMapping, type MaximoListField, type MaximoMapping,
} from './maximo-mapping.js';
import { MaximoWebhookVerifier, splitMessage, type MaximoWebhookOptions } from './maximo-webhook.js';
import type { Delivery, Source, SourceEvent, WebhookRequest } from './source.js';

export { MAXIMO_CONFIG_SCHEMA } from './maximo-config.js';
export { MAXIMO_DEFAULT_CRITICALITY_MAP, MAXIMO_DEFAULT_STATUS_MAP, MAXIMO_DEFAULT_TYPE_MAP } from './maximo-mapping.js';
export type { MaximoListField } from './maximo-mapping.js';
export type { MaximoWebhookOptions } from './maximo-webhook.js';

/** The Maximo adapter's options, secrets already resolved. Only id, baseUrl, apiKey and webhook are required. */
export interface MaximoSourceOptions {
  readonly id: string;
  /** Everything before `/os/...`: https://host/maximo/api (MAS 8+) or https://host/maximo/oslc (7.6). */
  readonly baseUrl: string;
  readonly apiKey: string;
  /** Default mxapiwodetail. */
  readonly objectStructure?: string;
  /** Default 100. */
  readonly pageSize?: number;
  /** Whole-call deadline per request; default 30000. */
  readonly timeoutMs?: number;
  /** Default 8 MiB per page. */
  readonly maxResponseBytes?: number;
  /** Default 10000. */
  readonly maxPages?: number;
  /** Only these sites (siteid in [...]); default all the API key can see. */
  readonly sites?: readonly string[];
  /** ANDed into every work-order query; default `istask=0` (task rows are parts of an order, not orders). */
  readonly where?: string;
  /** Server-side prefilter for the full resync; default `historyflag=0`. */
  readonly openWhere?: string;
  /** Default 120000. */
  readonly pollOverlapMs?: number;
  /** wogate's order id: `SITEID/WONUM` (default) or `WONUM` where work order numbers are unique across sites. */
  readonly idFormat?: 'site/wonum' | 'wonum';
  /** `_rowstamp` (default) or `changedate`; see docs/sources/maximo.md. */
  readonly revision?: 'rowstamp' | 'changedate';
  /** Merged over MAXIMO_DEFAULT_STATUS_MAP; keys are internal values (status_maxvalue). */
  readonly statusMap?: Readonly<Record<string, CanonicalStatus>>;
  /** Merged over MAXIMO_DEFAULT_TYPE_MAP; keyed by worktype. */
  readonly typeMap?: Readonly<Record<string, OrderType>>;
  /** For a worktype that is empty or not in typeMap; default planned. */
  readonly defaultType?: OrderType;
  readonly fields?: {
    /** Default `vendor` (the company doing the work). */
    readonly vendor?: string;
    /** Default `worktype`. */
    readonly type?: string;
    /** Default `assetnum`. */
    readonly asset?: string;
    /** Further assets; default `rel.multiassetlocci{assetnum}`. `false` reads assetnum only. */
    readonly multiAssets?: MaximoListField | false;
    /** Default labor assignments, `rel.assignment{laborcode}`. */
    readonly technicians?: MaximoListField;
    /** Default status history `rel.wostatus{status,changeby,changedate}`, counting APPR and synonyms statusMap maps to approved. */
    readonly approvals?: { readonly select: string; readonly path: string; readonly statuses?: readonly string[] } | false;
    /** First non-empty wins; default schedstart, targstartdate. */
    readonly windowStart?: readonly string[];
    /** Default schedfinish, targcompdate. */
    readonly windowEnd?: readonly string[];
  };
  /** Asset and order asset ids as `SITEID/ASSETNUM` instead of ASSETNUM; default false. */
  readonly qualifyAssetsBySite?: boolean;
  readonly assets?: {
    /** Default mxapiasset. */
    readonly objectStructure?: string;
    readonly where?: string;
    /** Default assettype. */
    readonly classAttribute?: string;
    readonly classMap?: Readonly<Record<string, string>>;
    /** Default priority. */
    readonly criticalityAttribute?: string;
    /** Merged over MAXIMO_DEFAULT_CRITICALITY_MAP. */
    readonly criticalityMap?: Readonly<Record<string, Criticality>>;
  };
  readonly writeBack?: { readonly logType?: string; readonly clientViewable?: boolean };
  readonly webhook: MaximoWebhookOptions;
}

const DEFAULT_BODY_BYTES = 1024 * 1024;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.-]{0,39}$/;

/** Resolves defaults into the mapping the reader uses; exported for tests and `wogate source test`. */
export function maximoMapping(o: MaximoSourceOptions): MaximoMapping {
  const f = o.fields ?? {};
  const statusMap = { ...MAXIMO_DEFAULT_STATUS_MAP, ...o.statusMap };
  // APPR is the act of approving (WSCH is often set by PM generation or a cron user, who approves
  // nothing); synonyms the site maps to approved count like it.
  const synonyms = Object.keys(o.statusMap ?? {}).filter((k) => !Object.hasOwn(MAXIMO_DEFAULT_STATUS_MAP, k) && statusMap[k] === 'approved');
  const approved = ['APPR', ...synonyms];
  const approvals = f.approvals === false ? undefined : {
    select: f.approvals?.select ?? 'rel.wostatus{status,changeby,changedate}',
    path: f.approvals?.path ?? 'wostatus',
    statuses: f.approvals?.statuses ?? approved,
  };
  const multiAssets = f.multiAssets === false ? undefined : f.multiAssets ?? { select: 'rel.multiassetlocci{assetnum}', path: 'multiassetlocci', idField: 'assetnum' };
  return {
    idFormat: o.idFormat ?? 'site/wonum',
    statusMap,
    typeMap: { ...MAXIMO_DEFAULT_TYPE_MAP, ...o.typeMap },
    defaultType: o.defaultType ?? 'planned',
    revision: o.revision ?? 'rowstamp',
    vendor: (f.vendor ?? 'vendor').toLowerCase(),
    type: (f.type ?? 'worktype').toLowerCase(),
    asset: (f.asset ?? 'assetnum').toLowerCase(),
    technicians: lowerPath(f.technicians ?? { select: 'rel.assignment{laborcode}', path: 'assignment', idField: 'laborcode' }),
    ...(approvals ? { approvals: { ...approvals, path: approvals.path.toLowerCase() } } : {}),
    ...(multiAssets ? { multiAssets: lowerPath(multiAssets) } : {}),
    qualifyAssetsBySite: o.qualifyAssetsBySite ?? false,
    windowStart: (f.windowStart ?? ['schedstart', 'targstartdate']).map((s) => s.toLowerCase()),
    windowEnd: (f.windowEnd ?? ['schedfinish', 'targcompdate']).map((s) => s.toLowerCase()),
  };
}

// Records are read with lower-cased keys, so configured names are compared the same way.
function lowerPath(f: MaximoListField): MaximoListField {
  return { ...f, path: f.path.toLowerCase(), ...(f.idField !== undefined ? { idField: f.idField.toLowerCase() } : {}) };
}

function assetMapping(o: MaximoSourceOptions): MaximoAssetMapping {
  const a = o.assets ?? {};
  return {
    classAttribute: (a.classAttribute ?? 'assettype').toLowerCase(),
    criticalityAttribute: (a.criticalityAttribute ?? 'priority').toLowerCase(),
    criticalityMap: { ...MAXIMO_DEFAULT_CRITICALITY_MAP, ...a.criticalityMap },
    ...(a.classMap ? { classMap: a.classMap } : {}),
    qualifyBySite: o.qualifyAssetsBySite ?? false,
  };
}

/**
 * IBM Maximo (Manage / EAM) through its REST/JSON API and a publish channel's HTTP endpoint.
 * The publish channel is a doorbell: wogate re-reads the order before it grants anything.
 */
export class MaximoSource implements Source {
  readonly kind = 'maximo';
  readonly id: string;
  readonly maxBodyBytes: number;
  readonly api: MaximoApi;
  readonly mapping: MaximoMapping;
  private readonly verifier: MaximoWebhookVerifier;

  constructor(o: MaximoSourceOptions) {
    this.id = o.id;
    const where = `source ${o.id}`;
    this.maxBodyBytes = o.webhook.maxBodyBytes ?? DEFAULT_BODY_BYTES;
    this.verifier = new MaximoWebhookVerifier(where, o.webhook);
    this.mapping = maximoMapping(o);
    const pageSize = o.pageSize ?? 100;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw new WogateError('CONFIG_INVALID', `${where}: pageSize must be 1 to 1000`);
    this.api = new MaximoApi({
      sourceId: o.id,
      baseUrl: o.baseUrl,
      apiKey: o.apiKey,
      timeoutMs: o.timeoutMs ?? 30_000,
      maxResponseBytes: o.maxResponseBytes ?? 8 * 1024 * 1024,
      maxPages: o.maxPages ?? 10_000,
      objectStructure: o.objectStructure ?? 'mxapiwodetail',
      assetObjectStructure: o.assets?.objectStructure ?? 'mxapiasset',
      pageSize,
      sites: o.sites ?? [],
      where: o.where ?? 'istask=0',
      openWhere: o.openWhere ?? 'historyflag=0',
      ...(o.assets?.where !== undefined ? { assetWhere: o.assets.where } : {}),
      pollOverlapMs: o.pollOverlapMs ?? 120_000,
      mapping: this.mapping,
      assets: assetMapping(o),
      writeBack: { logType: o.writeBack?.logType ?? 'WORK', ...(o.writeBack?.clientViewable !== undefined ? { clientViewable: o.writeBack.clientViewable } : {}) },
    });
  }

  verify(req: WebhookRequest, now: Date): Delivery {
    return this.verifier.verify(req, now);
  }

  /**
   * The order's id, always; its state too when the message carries every attribute the order is
   * made of (see isCompleteRecord), so wogate can still take access away while the API is down.
   */
  parseEvent(payload: unknown, _delivery: Delivery): SourceEvent {
    const { envelope, record } = splitMessage(payload);
    if (!record) throw new WogateError('HOOK_MAPPING_FAILED', 'id: the message is not a JSON object holding one work order', { field: 'id', path: 'workorder' });
    const { id } = orderKeyOf(record, this.mapping);
    const action = getPath(envelope, 'action') ?? getPath(envelope, 'event');
    const type = typeof action === 'string' && EVENT_TYPE.test(action) ? action : undefined;
    const order = isCompleteRecord(record, this.mapping) ? mapMaximoRecord(this.id, record, this.mapping) : undefined;
    return { orderId: id, ...(order ? { order } : {}), ...(type ? { type } : {}) };
  }

  close(): void {
    this.api.close();
  }
}

/** Builds the adapter from its config block (`maximo:` under a source), secrets already resolved. */
export function createMaximoSource(id: string, block: Readonly<Record<string, unknown>>): MaximoSource {
  return new MaximoSource(maximoOptionsFromConfig(id, block));
}
