import { createHmac } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Criticality } from '../../src/domain/index.js';
import type { MaintainXSourceOptions } from '../../src/sources/maintainx.js';
import type { CmmsSimulator, SimOrderSpec } from './simulator.js';

/**
 * MaintainX REST API v1 and webhooks, after MaintainX's OpenAPI document
 * (https://api.getmaintainx.com/v1/openapi.json): `Authorization: Bearer <key>`, GET /workorders with
 * `limit` (1-200), `cursor`/`nextCursor`, `sort`, repeated `statuses`/`expand`, `updatedAt[gte]`,
 * `show_upcoming`; GET /workorders/{id} → `{workOrder}`, 404 `{error}`; POST /workorders
 * `{title, description, priority, dueDate, locationId, assetId, categories}` → 201 `{id}`; POST
 * /workorders/{id}/comments `{content}`; GET /assets → `{assets, nextCursor}`. Webhooks are signed
 * `t=<seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (body and URI headers).
 *
 * MaintainX has no vendor/technician/approval fields a plant can rely on, so canonical values the
 * native fields cannot hold (non-numeric ids, approvers) go into work-order custom fields named by
 * MAINTAINX_SIM_LABELS, as an administrator following docs/sources/maintainx.md would set them up.
 */

export interface MaintainXSimLabels {
  readonly vendor: string;
  readonly technicians: string;
  readonly assets: string;
  readonly site: string;
  readonly approvers: string;
  /** Category added to OPEN orders that are approved. */
  readonly approvedCategory: string;
  /** Category added to emergency orders (type REACTIVE). */
  readonly emergencyCategory: string;
  readonly assetCriticality: string;
  readonly assetZone: string;
}

export const MAINTAINX_SIM_LABELS: MaintainXSimLabels = {
  vendor: 'Vendor ID',
  technicians: 'Vendor Technicians',
  assets: 'Additional Assets',
  site: 'Site',
  approvers: 'Access Approved By',
  approvedCategory: 'Vendor Access Approved',
  emergencyCategory: 'Emergency',
  assetCriticality: 'Criticality',
  assetZone: 'Zone',
};

/** The adapter settings that read what this simulator writes. */
export function maintainxSimMapping(l: MaintainXSimLabels = MAINTAINX_SIM_LABELS): Pick<MaintainXSourceOptions, 'fields' | 'approval' | 'assetFields'> {
  return {
    fields: { vendorField: l.vendor, techniciansField: l.technicians, assetsField: l.assets, siteField: l.site, emergencyCategory: l.emergencyCategory },
    approval: { field: l.approvers, category: l.approvedCategory },
    assetFields: { criticality: l.assetCriticality, zone: l.assetZone, site: l.site },
  };
}

export interface MaintainXSimOptions {
  readonly apiKey: string;
  readonly webhookSecret: string;
  readonly orgId?: number;
  readonly labels?: MaintainXSimLabels;
  /** Source of updatedAt and webhook timestamps; default the wall clock. */
  readonly now?: () => Date;
}

export interface SimAssetSpec {
  readonly id: string;
  readonly name: string;
  readonly class?: string;
  readonly criticality?: Criticality;
  readonly site?: string;
  readonly zone?: string;
}

type MxStatus = 'OPEN' | 'IN_PROGRESS' | 'ON_HOLD' | 'DONE' | 'CANCELED' | 'SKIPPED';
type MxPriority = 'NONE' | 'LOW' | 'MEDIUM' | 'HIGH';
const STATUSES: readonly MxStatus[] = ['OPEN', 'IN_PROGRESS', 'ON_HOLD', 'DONE', 'CANCELED', 'SKIPPED'];
const PRIORITIES: readonly MxPriority[] = ['NONE', 'LOW', 'MEDIUM', 'HIGH'];
const MX_STATUS: Record<SimOrderSpec['status'], MxStatus> = {
  draft: 'OPEN', awaiting_approval: 'OPEN', approved: 'OPEN', in_progress: 'IN_PROGRESS', on_hold: 'ON_HOLD',
  completed: 'DONE', closed: 'DONE', cancelled: 'CANCELED',
};
const SORTS = ['updatedAt', 'createdAt', 'dueDate', 'startedAt', 'completedAt'];

interface MxWorkOrder {
  id: number;
  sequentialId: number;
  organizationId: number;
  title: string;
  description: string | null;
  status: MxStatus;
  priority: MxPriority;
  type: 'PREVENTIVE' | 'REACTIVE';
  assetId: number | null;
  locationId: number | null;
  startDate: string | null;
  dueDate: string | null;
  vendorIds: number[];
  assigneeIds: number[];
  teamIds: number[];
  categories: string[];
  extraFields: Record<string, string>;
  creatorId: number;
  createdAt: string;
  updatedAt: string;
}

interface MxAsset {
  id: number; name: string; description: null; parentId: null; criticalityId: null; locationId: number | null;
  serialNumber: null; createdAt: string; updatedAt: string; creatorId: number; assetTypes: string[]; extraFields: Record<string, string>;
}

const NUMERIC = /^[1-9][0-9]{0,14}$/;
const num = (s: string): number | null => (NUMERIC.test(s) ? Number(s) : null);

function list(q: unknown): string[] {
  if (q === undefined) return [];
  return (Array.isArray(q) ? q : [q]).filter((v): v is string => typeof v === 'string');
}

function sign(secret: string, t: number, message: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${message}`, 'utf8').digest('hex')}`;
}

export class MaintainXSim implements CmmsSimulator {
  url = '';
  readonly requests: { method: string; path: string; query: string }[] = [];
  /** The last webhook notify() sent, as sent. */
  lastDelivery?: { url: string; headers: Record<string, string>; body: string };
  private readonly specs = new Map<string, SimOrderSpec>();
  private readonly orders = new Map<string, MxWorkOrder>();
  private readonly assets = new Map<number, MxAsset>();
  private readonly comments = new Map<string, string[]>();
  private readonly announced = new Set<string>();
  /** Orders created through POST /workorders: they have no SimOrderSpec. */
  private readonly createdIds: string[] = [];
  private nextId = 7_300_001;
  private createsWithoutId = 0;
  private readonly failures: (number | 'html' | 'hang')[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly labels: MaintainXSimLabels;
  private readonly orgId: number;
  private readonly clock: () => Date;
  private lastStamp = 0;
  private server?: Server;

  constructor(private readonly o: MaintainXSimOptions) {
    this.labels = o.labels ?? MAINTAINX_SIM_LABELS;
    this.orgId = o.orgId ?? 48213;
    this.clock = o.now ?? (() => new Date());
  }

  async start(): Promise<this> {
    const app = express();
    app.set('etag', false);
    app.use('/v1', (req, res, next) => this.gate(req, res, next));
    app.use(express.json({ limit: '1mb' }));
    app.get('/v1/workorders', (req, res) => this.listOrders(req, res));
    app.post('/v1/workorders', (req, res) => this.createOrder(req, res));
    app.get('/v1/workorders/:id', (req, res) => this.getOrder(req, res));
    app.post('/v1/workorders/:id/comments', (req, res) => this.postComment(req, res));
    app.get('/v1/assets', (req, res) => this.listAssets(req, res));
    app.use((_req: Request, res: Response) => res.status(404).json({ error: 'Not Found' }));
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    this.server?.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.url = `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/v1`;
    return this;
  }

  upsert(order: SimOrderSpec): void {
    if (!NUMERIC.test(order.id)) throw new Error(`MaintainX work order ids are positive integers; ${JSON.stringify(order.id)} is not one`);
    this.specs.set(order.id, order);
    this.render(order);
  }

  change(id: string, patch: Partial<Omit<SimOrderSpec, 'id'>>): void {
    const spec = this.specs.get(id);
    const wo = this.orders.get(id);
    if (!spec && wo && this.createdIds.includes(id)) {
      // Created through the API, so there is no spec to render from: change the record itself.
      if (patch.status) wo.status = MX_STATUS[patch.status];
      if (patch.title) wo.title = patch.title;
      if (patch.end) wo.dueDate = patch.end.toISOString();
      wo.updatedAt = this.stamp();
      return;
    }
    if (!spec) throw new Error(`no work order ${id}`);
    const next = { ...spec, ...patch };
    this.specs.set(id, next);
    this.render(next);
  }

  remove(id: string): void {
    this.specs.delete(id);
    this.orders.delete(id);
  }

  upsertAsset(a: SimAssetSpec): void {
    const id = num(a.id);
    if (id === null) throw new Error(`MaintainX asset ids are positive integers; ${JSON.stringify(a.id)} is not one`);
    const stamp = this.stamp();
    const extraFields: Record<string, string> = {};
    if (a.criticality) extraFields[this.labels.assetCriticality] = a.criticality;
    if (a.zone) extraFields[this.labels.assetZone] = a.zone;
    if (a.site) extraFields[this.labels.site] = a.site;
    this.assets.set(id, {
      id, name: a.name, description: null, parentId: null, criticalityId: null, locationId: a.site ? num(a.site) : null,
      serialNumber: null, createdAt: this.assets.get(id)?.createdAt ?? stamp, updatedAt: stamp, creatorId: 851,
      assetTypes: a.class ? [a.class] : [], extraFields,
    });
  }

  /** The stored MaintainX record, for tests that tamper with it or inspect it. */
  raw(id: string): MxWorkOrder | undefined {
    return this.orders.get(id);
  }

  async notify(id: string, hookUrl: string): Promise<number> {
    const wo = this.orders.get(id);
    if (!wo) throw new Error(`no work order ${id}`);
    const type = this.announced.has(id) ? 'WORK_ORDER_CHANGE' : 'NEW_WORK_ORDER';
    this.announced.add(id);
    const body = JSON.stringify({ type, orgId: this.orgId, workOrderId: wo.id, occurredAt: wo.updatedAt, newWorkOrder: { ...wo } });
    const t = Math.floor(this.clock().getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      'x-maintainx-webhook-body-signature': sign(this.o.webhookSecret, t, body),
      'x-maintainx-webhook-uri-signature': sign(this.o.webhookSecret, t, hookUrl),
    };
    this.lastDelivery = { url: hookUrl, headers, body };
    // MaintainX gives up on a webhook call after 10 seconds.
    const res = await fetch(hookUrl, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  }

  notes(id: string): readonly string[] {
    return this.comments.get(id) ?? [];
  }

  /** Work orders created through POST /workorders, by id, oldest first. */
  created(): string[] {
    return [...this.createdIds];
  }

  /** The next `count` creates succeed but answer 201 without the new id. */
  answerCreatesWithoutId(count = 1): void {
    this.createsWithoutId += count;
  }

  failNext(count: number, how: number | 'html' | 'hang'): void {
    for (let i = 0; i < count; i++) this.failures.push(how);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** updatedAt moves forward by at least a millisecond per change, as a database clock would. */
  private stamp(): string {
    this.lastStamp = Math.max(this.clock().getTime(), this.lastStamp + 1);
    return new Date(this.lastStamp).toISOString();
  }

  private render(s: SimOrderSpec): void {
    const l = this.labels;
    const prev = this.orders.get(s.id);
    const stamp = this.stamp();
    const approved = s.status !== 'draft' && s.status !== 'awaiting_approval';
    const status = MX_STATUS[s.status];
    const [first, ...rest] = s.assetIds;
    const assetId = first === undefined ? null : num(first);
    const extraAssets = assetId === null ? s.assetIds : rest;
    const techNums = s.technicianIds.map(num);
    const extraFields: Record<string, string> = {
      [l.vendor]: s.vendorId,
      [l.technicians]: s.technicianIds.join(', '),
      [l.site]: s.site,
      ...(extraAssets.length > 0 ? { [l.assets]: extraAssets.join(', ') } : {}),
      ...(approved && s.approvers.length > 0 ? { [l.approvers]: s.approvers.join(', ') } : {}),
    };
    const categories = [
      ...(s.status === 'approved' ? [l.approvedCategory] : []),
      ...(s.type === 'emergency' ? [l.emergencyCategory] : []),
    ];
    this.orders.set(s.id, {
      id: Number(s.id), sequentialId: Number(s.id) % 100000, organizationId: this.orgId,
      title: s.title ?? `Work order ${s.id}`, description: null, status, priority: s.type === 'emergency' ? 'HIGH' : 'MEDIUM',
      type: s.type === 'planned' ? 'PREVENTIVE' : 'REACTIVE',
      assetId, locationId: num(s.site), startDate: s.start.toISOString(), dueDate: s.end.toISOString(),
      vendorIds: num(s.vendorId) === null ? [] : [Number(s.vendorId)],
      assigneeIds: techNums.every((n) => n !== null) ? (techNums as number[]) : [],
      teamIds: [], categories, extraFields, creatorId: 851, createdAt: prev?.createdAt ?? stamp, updatedAt: stamp,
    });
  }

  private gate(req: Request, res: Response, next: NextFunction): void {
    const [path, query = ''] = req.originalUrl.split('?', 2) as [string, string?];
    this.requests.push({ method: req.method, path, query });
    const how = this.failures.shift();
    if (how === 'hang') return;
    if (how === 'html') {
      // A login page from an SSO proxy, with 200: the kind of answer that must not be read as data.
      res.status(200).type('text/html').send('<!DOCTYPE html><html><head><title>Sign in</title></head><body>Session expired</body></html>');
      return;
    }
    if (typeof how === 'number') {
      if (how === 429) res.set({ 'Retry-After': '2', 'X-Rate-Limit-Limit': '100', 'X-Rate-Limit-Remaining': '0', 'X-Rate-Limit-Reset': '2' });
      res.status(how).json({ error: `simulated failure ${how}` });
      return;
    }
    const auth = /^bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (!auth || auth[1] !== this.o.apiKey) {
      // MaintainX answers an invalid token with an empty text/plain 401.
      res.status(401).type('text/plain').send('');
      return;
    }
    next();
  }

  private view(wo: MxWorkOrder, expand: readonly string[], one: boolean): Record<string, unknown> {
    const { vendorIds, assigneeIds, teamIds, categories, extraFields, ...base } = wo;
    return {
      ...base,
      // The single-order read carries these always; the list only when expanded.
      ...(one || expand.includes('vendor_ids') ? { vendorIds } : {}),
      ...(one ? { assigneeIds, teamIds } : {}),
      ...(one || expand.includes('categories') ? { categories } : {}),
      ...(expand.includes('extra_fields') ? { extraFields } : {}),
      ...(expand.includes('assignees') ? { assignees: assigneeIds.map((id) => ({ type: 'USER', id })) } : {}),
      ...(expand.includes('asset') && wo.assetId !== null ? { asset: { id: wo.assetId, name: `Asset ${wo.assetId}` } } : {}),
    };
  }

  private listOrders(req: Request, res: Response): void {
    const q = req.query as Record<string, unknown>;
    const limit = this.limit(q.limit, res);
    if (limit === undefined) return;
    const statuses = list(q.statuses);
    if (statuses.some((s) => !STATUSES.includes(s as MxStatus))) return void res.status(400).json({ error: 'Invalid statuses' });
    const sortRaw = typeof q.sort === 'string' ? q.sort : 'createdAt';
    const desc = sortRaw.startsWith('-');
    const sortKey = desc ? sortRaw.slice(1) : sortRaw;
    if (!SORTS.includes(sortKey)) return void res.status(400).json({ error: 'Invalid sort' });
    const gteRaw = q['updatedAt[gte]'];
    const gte = typeof gteRaw === 'string' ? Date.parse(gteRaw) : undefined;
    if (Number.isNaN(gte)) return void res.status(400).json({ error: 'Invalid updatedAt[gte]' });
    const upcoming = q.show_upcoming === 'true' || q.show_upcoming === '1';
    const now = this.clock().getTime();
    const keyOf = (wo: MxWorkOrder): number => {
      const v = sortKey === 'updatedAt' ? wo.updatedAt : sortKey === 'dueDate' ? wo.dueDate : wo.createdAt;
      return v === null ? Number.MAX_SAFE_INTEGER : Date.parse(v);
    };
    const rows = [...this.orders.values()]
      .filter((wo) => statuses.length === 0 || statuses.includes(wo.status))
      .filter((wo) => gte === undefined || Date.parse(wo.updatedAt) >= gte)
      // Without show_upcoming MaintainX leaves out orders whose start date is still ahead.
      .filter((wo) => upcoming || wo.startDate === null || Date.parse(wo.startDate) <= now)
      .map((wo) => ({ wo, key: keyOf(wo) }))
      .sort((a, b) => (desc ? -1 : 1) * (a.key - b.key || a.wo.id - b.wo.id));
    this.page(req, res, rows, limit, desc, 'workOrders', (r) => this.view(r.wo, list(q.expand), false), (r) => [r.key, r.wo.id]);
  }

  private getOrder(req: Request, res: Response): void {
    const id = String(req.params.id);
    if (!NUMERIC.test(id)) return void res.status(400).json({ error: 'id must be an integer' });
    const wo = this.orders.get(id);
    if (!wo) return void res.status(404).json({ error: 'Work Order Not Found' });
    res.json({ workOrder: this.view(wo, list((req.query as Record<string, unknown>).expand), true) });
  }

  /**
   * POST /workorders: a new OPEN work order with the next id. Refused with 400 and `{errors: [{error,
   * fieldPath}]}` for a missing title, an unknown priority, a date without offset, or ids that are
   * not positive integers.
   */
  private createOrder(req: Request, res: Response): void {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const refuse = (fieldPath: string, error: string) => void res.status(400).json({ errors: [{ error, fieldPath }] });
    if (typeof b.title !== 'string' || b.title.trim() === '') return refuse('title', 'title is required');
    if (b.description !== undefined && typeof b.description !== 'string') return refuse('description', 'description must be a string');
    const priority = b.priority ?? 'NONE';
    if (!PRIORITIES.includes(priority as MxPriority)) return refuse('priority', 'priority must be one of NONE, LOW, MEDIUM, HIGH');
    const dueDate = b.dueDate;
    if (dueDate !== undefined && (typeof dueDate !== 'string' || !/(Z|[+-]\d\d:\d\d)$/.test(dueDate) || Number.isNaN(Date.parse(dueDate)))) return refuse('dueDate', 'dueDate must be an ISO 8601 date-time with offset');
    for (const k of ['locationId', 'assetId'] as const) {
      const v = b[k];
      if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) return refuse(k, `${k} must be a positive integer`);
    }
    const categories = b.categories ?? [];
    if (!Array.isArray(categories) || !categories.every((c) => typeof c === 'string')) return refuse('categories', 'categories must be an array of strings');
    const id = this.nextId++;
    const stamp = this.stamp();
    this.orders.set(String(id), {
      id, sequentialId: id % 100000, organizationId: this.orgId, title: b.title, description: (b.description as string | undefined) ?? null,
      status: 'OPEN', priority: priority as MxPriority, type: 'REACTIVE',
      assetId: (b.assetId as number | undefined) ?? null, locationId: (b.locationId as number | undefined) ?? null,
      startDate: null, dueDate: (dueDate as string | undefined) ?? null, vendorIds: [], assigneeIds: [], teamIds: [],
      categories: categories as string[], extraFields: {}, creatorId: 851, createdAt: stamp, updatedAt: stamp,
    });
    this.createdIds.push(String(id));
    if (this.createsWithoutId > 0) {
      this.createsWithoutId--;
      return void res.status(201).json({});
    }
    res.status(201).json({ id });
  }

  private postComment(req: Request, res: Response): void {
    const id = String(req.params.id);
    if (!this.orders.has(id)) return void res.status(404).json({ error: 'Work Order Not Found' });
    const content: unknown = (req.body as Record<string, unknown> | undefined)?.content;
    if (typeof content !== 'string' || content === '') return void res.status(400).json({ errors: [{ error: 'content is required', fieldPath: 'content' }] });
    const notes = this.comments.get(id) ?? [];
    notes.push(content);
    this.comments.set(id, notes);
    // Comments do not move updatedAt (MaintainX documents that).
    res.status(201).json({ id: notes.length });
  }

  private listAssets(req: Request, res: Response): void {
    const q = req.query as Record<string, unknown>;
    const limit = this.limit(q.limit, res);
    if (limit === undefined) return;
    const expand = list(q.expand);
    const rows = [...this.assets.values()].sort((a, b) => a.id - b.id).map((a) => ({ a, key: a.id }));
    this.page(req, res, rows, limit, false, 'assets', ({ a }) => {
      const { assetTypes, extraFields, ...base } = a;
      return { ...base, ...(expand.includes('asset_types') ? { assetTypes } : {}), ...(expand.includes('extra_fields') ? { extraFields } : {}) };
    }, (r) => [r.key, r.a.id]);
  }

  private limit(raw: unknown, res: Response): number | undefined {
    if (raw === undefined) return 100;
    const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= 1 && n <= 200)) {
      res.status(400).json({ error: 'limit must be an integer between 1 and 200' });
      return undefined;
    }
    return n;
  }

  /** Keyset paging: the cursor names the last row returned, so rows never shift under it. */
  private page<R>(
    req: Request, res: Response, rows: readonly R[], limit: number, desc: boolean, key: string,
    render: (r: R) => unknown, keyOf: (r: R) => [number, number],
  ): void {
    const raw = (req.query as Record<string, unknown>).cursor;
    let start = 0;
    if (typeof raw === 'string') {
      let after: [number, number];
      try {
        after = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [number, number];
        if (!Array.isArray(after) || after.length !== 2 || !after.every((n) => typeof n === 'number')) throw new Error('shape');
      } catch {
        return void res.status(400).json({ error: 'Invalid cursor' });
      }
      const dir = desc ? -1 : 1;
      start = rows.findIndex((r) => {
        const [k, id] = keyOf(r);
        return dir * (k - after[0]) > 0 || (k === after[0] && dir * (id - after[1]) > 0);
      });
      if (start < 0) start = rows.length;
    }
    const slice = rows.slice(start, start + limit);
    const last = slice[slice.length - 1];
    const more = start + limit < rows.length && last !== undefined;
    const nextCursor = more ? Buffer.from(JSON.stringify(keyOf(last))).toString('base64url') : null;
    const params = new URLSearchParams(req.originalUrl.split('?', 2)[1] ?? '');
    if (nextCursor) params.set('cursor', nextCursor);
    res.json({ [key]: slice.map(render), nextCursor, nextPageUrl: nextCursor ? `${req.baseUrl}${req.path}?${params.toString()}` : null });
  }
}
