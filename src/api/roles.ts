import type { Router } from 'express';
import { WogateError } from '../domain/index.js';
import type { Scope } from './tokens.js';

/** Roles a person signed in through the organisation's OIDC provider can hold, lowest first. */
export const ROLES = ['viewer', 'operator', 'policy-admin', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** `have` meets `need`: the ladder is viewer < operator < policy-admin < admin. */
export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The highest of several roles; undefined for none. */
export function highestRole(roles: Iterable<Role>): Role | undefined {
  let best: Role | undefined;
  for (const r of roles) if (!best || roleAtLeast(r, best)) best = r;
  return best;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A /v1 route guarded by a bearer: an OIDC access token with at least `minRole`, or a wgt_ API token with `scope`. */
export interface BearerRoute {
  readonly method: Method;
  /** Express path syntax, including the /v1 prefix. */
  readonly path: string;
  readonly auth: 'bearer';
  readonly minRole: Role;
  readonly scope: Scope;
  /**
   * Undoing a safety action: below this role the caller must be another person than the one who
   * took it (src/api/person.ts; checked by the action). API tokens have no role, so a token always
   * needs to be held by another person.
   */
  readonly soloRole?: Role;
  readonly summary: string;
}

/** A /v1 route that proves its caller some other way (webhook signatures); bearers are not read. */
export interface SignedRoute {
  readonly method: Method;
  readonly path: string;
  readonly auth: 'signature';
  readonly summary: string;
}

export type RouteRule = BearerRoute | SignedRoute;

/**
 * Every /v1 route wogate serves, and who may call it. The app declares its /v1 routes through
 * this table and checks its router against it at start, so a route without an entry (or an entry
 * without a route) stops the daemon from starting instead of serving something unguarded.
 */
export const ROUTES: readonly RouteRule[] = [
  { method: 'POST', path: '/v1/hooks/:sourceId', auth: 'signature', summary: 'CMMS webhook; the Standard Webhooks signature (or the source\'s own) is the credential' },
  { method: 'GET', path: '/v1/grants', auth: 'bearer', minRole: 'viewer', scope: 'grants:read', summary: 'list grants' },
  { method: 'GET', path: '/v1/grants/:id', auth: 'bearer', minRole: 'viewer', scope: 'grants:read', summary: 'one grant' },
  { method: 'POST', path: '/v1/grants/:id/revoke', auth: 'bearer', minRole: 'operator', scope: 'grants:revoke', summary: 'revoke a grant now and keep it off' },
  { method: 'GET', path: '/v1/access/blocks', auth: 'bearer', minRole: 'viewer', scope: 'grants:read', summary: 'access blocked for all orders until lifted' },
  { method: 'POST', path: '/v1/access/revoke', auth: 'bearer', minRole: 'operator', scope: 'grants:revoke', summary: 'revoke a technician\'s access to a resource for every order, and block it until lifted' },
  // A higher role than the block: lifting reopens access an operator judged unsafe, across every order.
  { method: 'POST', path: '/v1/access/:id/lift', auth: 'bearer', minRole: 'policy-admin', scope: 'admin', summary: 'lift an access block; open orders authorise that access again' },
  { method: 'GET', path: '/v1/explain', auth: 'bearer', minRole: 'viewer', scope: 'explain', summary: 'desired grants and denials with reasons' },
  // Viewer: it answers only "is the chain intact, how long is it", nothing a viewer can't already see.
  { method: 'GET', path: '/v1/audit/verify', auth: 'bearer', minRole: 'viewer', scope: 'audit:read', summary: 'verify the keyed audit chain and its checkpoints' },
  // Break-glass: any operator may ask or approve, never both for one request (two-person rule, checked in the handler).
  { method: 'GET', path: '/v1/break-glass', auth: 'bearer', minRole: 'viewer', scope: 'grants:read', summary: 'list break-glass requests and their reviews' },
  { method: 'POST', path: '/v1/break-glass', auth: 'bearer', minRole: 'operator', scope: 'breakglass', summary: 'request emergency access without a work order' },
  { method: 'POST', path: '/v1/break-glass/:id/approve', auth: 'bearer', minRole: 'operator', scope: 'breakglass', summary: 'approve another operator\'s break-glass request' },
  { method: 'POST', path: '/v1/break-glass/:id/close', auth: 'bearer', minRole: 'operator', scope: 'breakglass', summary: 'withdraw a request or end its access now' },
  { method: 'GET', path: '/v1/vendors/suspended', auth: 'bearer', minRole: 'viewer', scope: 'grants:read', summary: 'vendors suspended by the kill switch' },
  { method: 'POST', path: '/v1/vendors/:id/suspend', auth: 'bearer', minRole: 'operator', scope: 'grants:revoke', summary: 'kill switch: revoke everything a vendor holds and grant them nothing until reinstated' },
  // Reinstating undoes the kill switch: a policy-admin alone, an operator only if they did not suspend.
  { method: 'POST', path: '/v1/vendors/:id/reinstate', auth: 'bearer', minRole: 'operator', scope: 'grants:revoke', soloRole: 'policy-admin', summary: 'lift a vendor\'s suspension (a policy-admin, or another person than who suspended); their open orders authorise again' },
  // Tokens: never the secret; a revoke takes effect on the token's next request.
  { method: 'GET', path: '/v1/tokens', auth: 'bearer', minRole: 'admin', scope: 'admin', summary: 'list API tokens (id, name, owner, scopes, created, expires, last used; never the secret)' },
  { method: 'POST', path: '/v1/tokens/:id/revoke', auth: 'bearer', minRole: 'admin', scope: 'admin', summary: 'revoke an API token now' },
];

export function bearerRoutes(): BearerRoute[] {
  return ROUTES.filter((r): r is BearerRoute => r.auth === 'bearer');
}

/** The table entry for a route; a route missing from the table is a programming error, found at start. */
export function ruleFor(method: Method, path: string): RouteRule {
  const rule = ROUTES.find((r) => r.method === method && r.path === path);
  if (!rule) throw new WogateError('INTERNAL', `${method} ${path} is not in the route table (src/api/roles.ts): every /v1 route must declare who may call it`);
  return rule;
}

const PATTERNS = new Map(ROUTES.map((r) => [r, new RegExp(`^${r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`)]));

/** The table entry a request falls under, if any (for audit records of refused requests). */
export function matchRoute(method: string, path: string): RouteRule | undefined {
  return ROUTES.find((r) => r.method === method && PATTERNS.get(r)?.test(path));
}

/** Marks the handler that enforces a rule, so the start-up check can see every route is guarded. */
export const GUARDS = Symbol('wogate.route-rule');
export type Guarded = { [GUARDS]?: RouteRule };

interface RouteLayer {
  route?: { path: unknown; methods: Record<string, boolean>; stack: { handle: Guarded }[] };
}

/**
 * Start-up check: the routes in `routers` (each with the prefix it is mounted at) are exactly the
 * table's, and each bearer route's first handler is the guard for its own entry.
 */
export function checkRouteTable(routers: readonly { prefix: string; router: Pick<Router, 'stack'> }[]): void {
  const seen = new Set<RouteRule>();
  for (const { prefix, router } of routers) {
    for (const layer of router.stack as unknown as RouteLayer[]) {
      const r = layer.route;
      if (!r || typeof r.path !== 'string') continue;
      const path = `${prefix}${r.path}`;
      if (!path.startsWith('/v1/')) continue;
      for (const m of Object.keys(r.methods)) {
        const rule = ruleFor(m.toUpperCase() as Method, path);
        if (rule.auth === 'bearer' && r.stack[0]?.handle[GUARDS] !== rule) {
          throw new WogateError('INTERNAL', `${rule.method} ${path} is not guarded by its route-table entry: declare it through the route table`);
        }
        seen.add(rule);
      }
    }
  }
  const missing = ROUTES.filter((r) => !seen.has(r));
  if (missing.length) throw new WogateError('INTERNAL', `route table entries without a route: ${missing.map((r) => `${r.method} ${r.path}`).join(', ')}`);
}

/**
 * A staff page that shows or changes something: it needs a signed-in staff session whose role is
 * at least that of the admin API route doing the same thing (`api`), so the pages can never allow
 * more than the API. Sign-in, sign-out and the static files are the only other /staff routes.
 */
export interface StaffPage {
  readonly method: 'GET' | 'POST';
  /** Express path syntax, including the /staff prefix. */
  readonly path: string;
  readonly api: BearerRoute;
  readonly summary: string;
}

function apiRule(method: Method, path: string): BearerRoute {
  const rule = ruleFor(method, path);
  if (rule.auth !== 'bearer') throw new WogateError('INTERNAL', `${method} ${path} is not a bearer route`);
  return rule;
}

export const STAFF_PAGES: readonly StaffPage[] = [
  { method: 'GET', path: '/staff', api: apiRule('GET', '/v1/grants'), summary: 'live grants with countdowns' },
  { method: 'GET', path: '/staff/grants/:id', api: apiRule('GET', '/v1/grants/:id'), summary: 'one grant, with the revoke form' },
  { method: 'POST', path: '/staff/grants/:id/revoke', api: apiRule('POST', '/v1/grants/:id/revoke'), summary: 'revoke a grant now' },
  { method: 'POST', path: '/staff/grants/:id/block-access', api: apiRule('POST', '/v1/access/revoke'), summary: 'revoke this grant\'s access for all orders' },
  { method: 'GET', path: '/staff/vendors', api: apiRule('GET', '/v1/vendors/suspended'), summary: 'vendors, their live grants and the kill switch' },
  { method: 'POST', path: '/staff/vendors/:id/suspend', api: apiRule('POST', '/v1/vendors/:id/suspend'), summary: 'kill switch: suspend a vendor' },
  { method: 'POST', path: '/staff/vendors/:id/reinstate', api: apiRule('POST', '/v1/vendors/:id/reinstate'), summary: 'lift a vendor\'s suspension' },
  { method: 'GET', path: '/staff/explain', api: apiRule('GET', '/v1/explain'), summary: 'why a work order gives (or does not give) access' },
];

/** The /staff routes that need no role: signing in and out, and the pages' stylesheet and script. */
export const STAFF_PUBLIC: readonly string[] = ['GET /staff/login', 'GET /staff/callback', 'POST /staff/logout', 'GET /staff/static/staff.css', 'GET /staff/static/staff.js'];

export type StaffGuarded = { [GUARDS]?: StaffPage };

/** Start-up check for the staff router (mounted at /staff): every route is a guarded page or a public one, and every page exists. */
export function checkStaffPages(router: Pick<Router, 'stack'>): void {
  const seen = new Set<StaffPage>();
  for (const layer of router.stack as unknown as { route?: { path: unknown; methods: Record<string, boolean>; stack: { handle: StaffGuarded }[] } }[]) {
    const r = layer.route;
    if (!r || typeof r.path !== 'string') continue;
    const path = `/staff${r.path === '/' ? '' : r.path}`;
    for (const m of Object.keys(r.methods)) {
      const key = `${m.toUpperCase()} ${path}`;
      if (STAFF_PUBLIC.includes(key)) continue;
      const page = STAFF_PAGES.find((p) => `${p.method} ${p.path}` === key);
      if (!page) throw new WogateError('INTERNAL', `${key} is not in the staff page table (src/api/roles.ts): every staff page must declare who may use it`);
      if (!r.stack.some((s) => s.handle[GUARDS] === page)) throw new WogateError('INTERNAL', `${key} is not guarded by its staff page entry`);
      seen.add(page);
    }
  }
  const missing = STAFF_PAGES.filter((p) => !seen.has(p));
  if (missing.length) throw new WogateError('INTERNAL', `staff page entries without a route: ${missing.map((p) => `${p.method} ${p.path}`).join(', ')}`);
}
