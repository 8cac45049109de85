import type { ApprovedScope, Grant, WorkOrder } from '../domain/index.js';
import type { BreakGlassRequest } from '../domain/breakglass.js';

// Dates travel as ISO strings inside JSON columns; these put them back.

export function orderToJson(o: WorkOrder): string {
  return JSON.stringify(o);
}

export function orderFromJson(text: string): WorkOrder {
  const o = JSON.parse(text) as Record<string, unknown> & { window: { start: string; end: string }; approvals: { by: string; at?: string }[] };
  return {
    ...(o as unknown as WorkOrder),
    window: { start: new Date(o.window.start), end: new Date(o.window.end) },
    approvals: o.approvals.map((a) => (a.at === undefined ? { by: a.by } : { by: a.by, at: new Date(a.at) })),
  };
}

export function scopeFromJson(text: string): ApprovedScope {
  const s = JSON.parse(text) as Omit<ApprovedScope, 'windowStart' | 'windowEnd'> & { windowStart: string; windowEnd: string };
  return { ...s, windowStart: new Date(s.windowStart), windowEnd: new Date(s.windowEnd) };
}

export function grantToJson(g: Grant): string {
  return JSON.stringify(g);
}

export function grantFromJson(text: string): Grant {
  const g = JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...g };
  for (const k of ['validFrom', 'validUntil', 'createdAt', 'updatedAt', 'nextAttemptAt'] as const) {
    if (typeof g[k] === 'string') out[k] = new Date(g[k]);
  }
  return out as unknown as Grant;
}

export function breakGlassToJson(r: BreakGlassRequest): string {
  return JSON.stringify(r);
}

export function breakGlassFromJson(text: string): BreakGlassRequest {
  const r = JSON.parse(text) as Record<string, unknown> & { window?: { start: string; end: string }; review?: Record<string, unknown> };
  const out: Record<string, unknown> = { ...r };
  for (const k of ['createdAt', 'approvedAt', 'closedAt'] as const) if (typeof r[k] === 'string') out[k] = new Date(r[k]);
  if (r.window) out.window = { start: new Date(r.window.start), end: new Date(r.window.end) };
  if (r.review) {
    const v: Record<string, unknown> = { ...r.review };
    for (const k of ['dueAt', 'nextAttemptAt', 'overdueSince', 'doneAt'] as const) if (typeof v[k] === 'string') v[k] = new Date(v[k]);
    out.review = v;
  }
  return out as unknown as BreakGlassRequest;
}
