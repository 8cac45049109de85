import type { TargetRef } from '../domain/index.js';
import { RestClient, Session, seg, type RestRequest, type RestResponse } from './rest.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import type { BeyondTrustTargetOptions } from './beyondtrust-config.js';
import { show } from './text.js';

export { BEYONDTRUST_TARGET_SCHEMA, beyondtrustTargetOptions, type BeyondTrustTargetOptions } from './beyondtrust-config.js';

/**
 * BeyondTrust Privileged Remote Access (PRA) through its Configuration API. A grant
 * `{kind: 'group', account, group}` makes the PRA user named `account` a member of the group policy
 * named `group`; the administrator links that policy to the asset's Jump Group (and gives it the
 * jump permissions), so membership is access. wogate manages the members of the policies listed
 * in `groups:` and nothing else: it never creates or deletes users, policies or jump groups.
 *
 * PRA's API holds no expiry for a membership (GroupPolicyMember is user_id, security_provider_id,
 * distinguished_name, group_name), and a user has none either (only password_expiration). The one
 * expiry it has, a vendor group's account_expiration, is whole days, group-wide and ends the
 * account itself. So nativeExpiry is false: wogate's own revoke at validUntil ends access.
 *
 * Membership changes are applied with `POST /group-policy/{id}/provision` after every add and
 * every revoke (also when there was nothing left to delete: an earlier revoke may have deleted
 * the member and failed before provisioning). Changes are made one at a time, as PRA wants them.
 */

const API = '/api/config/v1';
const PER_PAGE = 100;
/** 100 000 members or users: more is a paging loop, not a real site. */
const MAX_PAGES = 1000;
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const ACCOUNT = /^[^\u0000-\u001f\u007f]{1,64}$/;

type Reason = 'invalid_input' | 'not_managed' | 'config' | 'policy_missing' | 'no_such_user' | 'ambiguous_user' | 'refused' | 'response';

interface User {
  readonly id: number;
  readonly username: string;
  readonly securityProviderId: number;
}

interface Member {
  readonly id: number;
  readonly userId?: number;
  readonly securityProviderId?: number;
}

/** The group policy a cached id pointed at is gone (deleted, or recreated under a new id). */
class PolicyGone extends TargetError {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2147483647;
}

export class BeyondTrustTarget implements Target {
  readonly kind = 'beyondtrust';
  readonly nativeExpiry = false;
  readonly resourceKinds = ['group'] as const;
  readonly id: string;
  private readonly client: RestClient;
  private readonly session: Session;
  private readonly basic: string;
  private readonly groups: ReadonlySet<string>;
  private readonly provider: number | undefined;
  private readonly marginMs: number;
  private tokenExpiresAt = 0;
  private readonly policyIds = new Map<string, number>();
  private lock: Promise<unknown> = Promise.resolve();

  constructor(o: BeyondTrustTargetOptions) {
    this.id = o.id;
    if (o.groups.length === 0) throw this.fail('config', 'groups must list at least one group policy');
    if (!o.clientId || /[\s:]/.test(o.clientId)) throw this.fail('config', 'clientId must be non-empty, without whitespace or ":"');
    if (!o.clientSecret) throw this.fail('config', 'clientSecret must be set');
    if (o.securityProviderId !== undefined && !posInt(o.securityProviderId)) throw this.fail('config', `securityProviderId ${show(o.securityProviderId)} is not a positive integer`);
    this.groups = new Set(o.groups);
    this.provider = o.securityProviderId;
    this.marginMs = o.tokenRefreshMarginMs ?? 60_000;
    this.basic = `Basic ${Buffer.from(`${o.clientId}:${o.clientSecret}`).toString('base64')}`;
    this.client = new RestClient({
      targetId: o.id,
      baseUrl: o.baseUrl,
      where: 'beyondtrust.baseUrl',
      timeoutMs: o.timeoutMs ?? 10_000,
      secrets: [o.clientSecret, this.basic.slice(6)],
      ...(o.caPem ? { caPem: o.caPem } : {}),
    });
    this.session = new Session(this.client, (ctx) => this.token(ctx));
  }

  /**
   * Checks the credentials and finds every managed group policy. A policy that does not exist, or
   * refused credentials, stop wogate from starting; an unreachable appliance only delays the lookup
   * (access already granted must still be revoked on time, so PRA being down must not stop wogate).
   */
  async init(ctx: CallContext): Promise<void> {
    for (const group of this.groups) {
      try {
        const id = await this.policyId(group, ctx, 'init');
        const links = this.client.json(await this.call(ctx, { op: 'init', method: 'GET', path: `/group-policy/${id}/jump-group` }));
        if (Array.isArray(links) && links.length === 0) {
          ctx.log.warn('PRA group policy links no Jump Group: its members gain no Jump Items', { target: this.id, group });
        }
      } catch (e) {
        if (e instanceof TargetError && e.retryable) {
          ctx.log.warn('PRA not reachable at start; group policies will be looked up on first use', { target: this.id, group, error: e.message });
          return;
        }
        throw e;
      }
    }
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const { account, group } = this.resource(grant);
    if (grant.validUntil.getTime() <= ctx.now.getTime()) {
      // The window is over (an update shortened it into the past): the state to reach is "not a member".
      await this.revoke(grant, undefined, ctx);
      return { group, account };
    }
    return this.serial(() =>
      this.withPolicy(group, ctx, 'provision', async (gp) => {
        const user = await this.findUser(account, ctx, 'provision');
        if (!user) {
          throw this.fail('no_such_user', `PRA has no user named ${show(account)}${this.provider ? ` in security provider ${this.provider}` : ''}; create it first (SAML and RADIUS users appear after their first login)`);
        }
        if (user.username !== account) {
          // list() reads names back from PRA: a different spelling would look like drift forever.
          throw this.fail('invalid_input', `account ${show(account)} is spelled ${show(user.username)} in PRA; use PRA's spelling in the register`);
        }
        let member = (await this.members(gp, ctx, 'provision')).find((m) => m.userId === user.id);
        if (member) {
          ctx.log.debug('PRA user already a member of the group policy', { group, account, memberId: member.id });
        } else {
          member = await this.addMember(gp, group, user, ctx);
          ctx.log.info('PRA group policy member added', { group, account, groupPolicyId: gp, memberId: member.id });
        }
        await this.provisionPolicy(gp, ctx, 'provision');
        return { groupPolicyId: gp, memberId: member.id, userId: user.id };
      }),
    );
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // PRA holds no window: the membership is the same, wogate's timer ends it.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    const r = grant.resource;
    if (r.kind !== 'group') {
      ctx.log.warn('PRA revoke of a resource this target cannot hold; nothing to remove', { kind: r.kind });
      return;
    }
    if (!this.groups.has(r.group)) {
      // Never in groups: wogate added nothing there and may touch nothing there.
      ctx.log.warn('PRA revoke for a group policy not in groups:; nothing wogate may remove', { group: r.group, account: r.account });
      return;
    }
    await this.serial(async () => {
      let gp: number;
      try {
        gp = await this.policyId(r.group, ctx, 'revoke');
      } catch (e) {
        if (e instanceof TargetError && e.details?.['reason'] === 'policy_missing') {
          ctx.log.warn('PRA group policy is gone, and its memberships with it', { group: r.group, error: e.message });
          return;
        }
        throw e;
      }
      await this.withPolicy(r.group, ctx, 'revoke', (id) => this.removeUser(id, r.group, r.account, ref, ctx), gp).catch((e: unknown) => {
        if (e instanceof TargetError && e.details?.['reason'] === 'policy_missing') return;
        throw e;
      });
    });
  }

  /** Every member of the managed group policies: users with their resource, other members (LDAP groups, DNs) by ref only. */
  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const entries: TargetEntry[] = [];
    const names = new Map<number, string | undefined>();
    for (const group of this.groups) {
      await this.withPolicy(group, ctx, 'list', async (gp) => {
        for (const m of await this.members(gp, ctx, 'list')) {
          if (m.userId === undefined) {
            entries.push({ ref: { groupPolicyId: gp, memberId: m.id } });
            continue;
          }
          if (!names.has(m.userId)) names.set(m.userId, await this.userName(m.userId, ctx));
          const account = names.get(m.userId);
          const ref = { groupPolicyId: gp, memberId: m.id, userId: m.userId };
          entries.push(account === undefined ? { ref } : { ref, resource: { kind: 'group', account, group } });
        }
      });
    }
    return entries;
  }

  /** Removes a listed member wogate did not grant (drift removal); only in managed policies. */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const gp = entry.ref['groupPolicyId'];
    const memberId = entry.ref['memberId'];
    const userId = entry.ref['userId'];
    if (!posInt(gp) || !posInt(memberId) || (userId !== undefined && !posInt(userId))) {
      throw this.fail('invalid_input', `entry ref ${show(entry.ref)} is not a PRA group policy member`);
    }
    const managed = new Set<number>();
    for (const group of this.groups) managed.add(await this.policyId(group, ctx, 'revokeEntry'));
    if (!managed.has(gp)) throw this.fail('not_managed', `group policy ${gp} is not one of this target's groups; wogate does not touch it`);
    await this.serial(async () => {
      const path = `/group-policy/${seg(gp)}/member/${seg(memberId)}`;
      const got = await this.call(ctx, { op: 'revokeEntry', method: 'GET', path, accept: [404] });
      if (got.status !== 404) {
        const m = this.member(this.client.json(got), got);
        // Member ids are PRA's; if this one now names someone else, the entry is already gone.
        if (userId === undefined || m.userId === userId) await this.call(ctx, { op: 'revokeEntry', method: 'DELETE', path, accept: [404] });
      }
      await this.provisionPolicy(gp, ctx, 'revokeEntry');
      ctx.log.info('PRA group policy member removed (not granted by wogate)', { groupPolicyId: gp, memberId });
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // --- PRA calls ---

  /** Client credentials at /oauth2/token; the token is kept until `expires_in` minus the margin. */
  private async token(ctx: CallContext): Promise<string> {
    const res = await this.client.request(
      { op: 'token', method: 'POST', path: '/oauth2/token', headers: { authorization: this.basic }, form: { grant_type: 'client_credentials' } },
      ctx,
    );
    const body = this.client.json(res, 'an OAuth token');
    if (!isObject(body) || typeof body['access_token'] !== 'string' || body['access_token'] === '') {
      throw this.client.invalid(res, 'no access_token in the token answer');
    }
    const type = body['token_type'];
    if (typeof type !== 'string' || type.toLowerCase() !== 'bearer') throw this.client.invalid(res, `token_type ${show(type)} is not Bearer`);
    const token = body['access_token'];
    this.client.addSecret(token);
    const raw = body['expires_in'];
    // Without expires_in, assume a short life rather than a long one.
    const lifeMs = (typeof raw === 'number' && Number.isFinite(raw) && raw > 0 ? raw : 300) * 1000;
    this.tokenExpiresAt = ctx.now.getTime() + lifeMs - Math.min(this.marginMs, lifeMs / 2);
    ctx.log.debug('PRA OAuth token fetched', { target: this.id, expiresInS: lifeMs / 1000 });
    return token;
  }

  /** A Configuration API call with the bearer token; a 401 fetches a new token once (Session). */
  private async call(ctx: CallContext, req: Omit<RestRequest, 'headers'>): Promise<RestResponse> {
    if (ctx.now.getTime() >= this.tokenExpiresAt) this.session.clear();
    try {
      return await this.session.with(ctx, (token) =>
        this.client.request({ ...req, path: API + req.path, headers: { authorization: `Bearer ${token}` }, accept: [401, ...(req.accept ?? [])] }, ctx),
      );
    } catch (e) {
      if (e instanceof TargetError && e.details?.['status'] === 401 && e.details['op'] !== 'token') {
        // PRA answers 401 both to a refused token and to a query parameter or body field it does not know.
        throw new TargetError(this.id, `${e.message.replace(`target ${this.id}: `, '')}; PRA also answers 401 to an unknown query parameter or body field`, false, e.details);
      }
      throw e;
    }
  }

  /** All pages of a list: `current_page` until X-BT-Pagination-Last-Page (or a short page, without the header). */
  private async pages(ctx: CallContext, op: string, path: string, query: Record<string, string> = {}, gone?: () => TargetError): Promise<unknown[]> {
    const all: unknown[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await this.call(ctx, { op, method: 'GET', path, query: { ...query, per_page: String(PER_PAGE), current_page: String(page) }, ...(gone ? { accept: [404] } : {}) });
      if (res.status === 404 && gone) throw gone();
      const items = this.client.json(res, 'a JSON array');
      // "200 with an error inside": an object where a list belongs must not read as "nothing there".
      if (!Array.isArray(items)) throw this.client.invalid(res, 'expected a JSON array');
      all.push(...items);
      const header = res.headers['x-bt-pagination-last-page'];
      if (header === undefined) {
        if (items.length < PER_PAGE) return all;
        continue;
      }
      const last = typeof header === 'string' && /^\d+$/.test(header.trim()) ? Number(header) : NaN;
      if (!Number.isInteger(last) || last < 1) throw this.client.invalid(res, `X-BT-Pagination-Last-Page ${show(header)} is not a page number`);
      if (page >= last || items.length === 0) return all;
    }
    throw this.fail('response', `GET ${API}${path} has more than ${MAX_PAGES} pages; refusing to read on`, true);
  }

  private async policyId(group: string, ctx: CallContext, op: string): Promise<number> {
    const known = this.policyIds.get(group);
    if (known !== undefined) return known;
    const found = (await this.pages(ctx, op, '/group-policy', { name: group })).filter((p) => {
      if (!isObject(p) || !posInt(p['id']) || typeof p['name'] !== 'string') throw this.fail('response', `a group policy in PRA's list has no id or name: ${this.client.excerpt(show(p))}`, true);
      return p['name'].toLowerCase() === group.toLowerCase();
    });
    if (found.length === 0) throw this.fail('policy_missing', `group policy ${show(group)} (in groups:) does not exist in PRA`);
    if (found.length > 1) throw this.fail('config', `${found.length} group policies in PRA are named ${show(group)}; rename all but one`);
    const id = (found[0] as { id: number }).id;
    this.policyIds.set(group, id);
    return id;
  }

  /** Runs `fn` with the policy's id; if PRA says the id is gone, looks the name up again once. */
  private async withPolicy<T>(group: string, ctx: CallContext, op: string, fn: (gp: number) => Promise<T>, known?: number): Promise<T> {
    const gp = known ?? (await this.policyId(group, ctx, op));
    try {
      return await fn(gp);
    } catch (e) {
      if (!(e instanceof PolicyGone)) throw e;
      this.policyIds.delete(group);
      ctx.log.warn('PRA group policy id no longer exists; looking its name up again', { group, groupPolicyId: gp });
      return fn(await this.policyId(group, ctx, op));
    }
  }

  private gone(gp: number, op: string): () => TargetError {
    return () => new PolicyGone(this.id, `group policy ${gp} no longer exists in PRA`, true, { op, status: 404, reason: 'policy_missing' });
  }

  private async members(gp: number, ctx: CallContext, op: string): Promise<Member[]> {
    const items = await this.pages(ctx, op, `/group-policy/${seg(gp)}/member`, {}, this.gone(gp, op));
    return items.map((m) => this.member(m));
  }

  private member(m: unknown, res?: RestResponse): Member {
    const bad = (why: string): TargetError =>
      res ? this.client.invalid(res, why) : this.fail('response', `a group policy member in PRA's answer ${why}: ${this.client.excerpt(show(m))}`, true);
    if (!isObject(m) || !posInt(m['id'])) throw bad('has no numeric id');
    const userId = m['user_id'];
    const provider = m['security_provider_id'];
    if (userId !== undefined && userId !== null && !posInt(userId)) throw bad('has a user_id that is not a positive integer');
    return {
      id: m['id'],
      ...(posInt(userId) ? { userId } : {}),
      ...(posInt(provider) ? { securityProviderId: provider } : {}),
    };
  }

  private async addMember(gp: number, group: string, user: User, ctx: CallContext): Promise<Member> {
    const res = await this.call(ctx, {
      op: 'provision', method: 'POST', path: `/group-policy/${seg(gp)}/member`,
      json: { security_provider_id: user.securityProviderId, user_id: user.id }, accept: [404, 422],
    });
    if (res.status === 404) throw this.gone(gp, 'provision')();
    if (res.status === 201 || res.status === 200) {
      const body = res.text.trim() === '' ? undefined : this.client.json(res);
      if (isObject(body) && posInt(body['id']) && body['user_id'] === user.id) return this.member(body, res);
      if (isObject(body) && (body['message'] !== undefined || body['errors'] !== undefined)) {
        throw this.client.refused(res, this.errorText(body), true);
      }
    }
    // PRA answers 201 without a body (or 422 when the user joined meanwhile): the list has the id.
    const found = (await this.members(gp, ctx, 'provision')).find((m) => m.userId === user.id);
    if (found) return found;
    if (res.status === 422) {
      const body = (() => { try { return JSON.parse(res.text) as unknown; } catch { return undefined; } })();
      throw new TargetError(this.id, `${res.what} answered 422: PRA refused to add ${show(user.username)} to ${show(group)}: ${this.client.redact(this.errorText(body))}`, false, {
        op: 'provision', status: 422, reason: 'refused', ...(isObject(body) && isObject(body['errors']) ? { fields: Object.keys(body['errors']) } : {}),
      });
    }
    throw this.client.invalid(res, `PRA accepted ${show(user.username)} into ${show(group)} but does not list the member`);
  }

  /** Applies the policy's membership changes; PRA documents 204 and no body. */
  private async provisionPolicy(gp: number, ctx: CallContext, op: string): Promise<void> {
    const res = await this.call(ctx, { op, method: 'POST', path: `/group-policy/${seg(gp)}/provision`, accept: [404] });
    if (res.status === 404) throw this.gone(gp, op)();
    if (res.text.trim() !== '') {
      let body: unknown;
      try {
        body = JSON.parse(res.text);
      } catch {
        return;
      }
      if (isObject(body) && (body['message'] !== undefined || body['errors'] !== undefined)) throw this.client.refused(res, this.errorText(body), true);
    }
  }

  private async removeUser(gp: number, group: string, account: string, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    const userIds = new Set<number>();
    // The ref names the user even after a rename; the name finds it after a crash lost the ref.
    if (ref && ref['groupPolicyId'] === gp && posInt(ref['userId'])) userIds.add(ref['userId']);
    for (const u of await this.users(account, ctx, 'revoke')) userIds.add(u.id);
    if (userIds.size === 0) {
      ctx.log.debug('PRA has no such user; no membership to remove', { group, account });
      return;
    }
    const doomed = (await this.members(gp, ctx, 'revoke')).filter((m) => m.userId !== undefined && userIds.has(m.userId));
    for (const m of doomed) {
      await this.call(ctx, { op: 'revoke', method: 'DELETE', path: `/group-policy/${seg(gp)}/member/${seg(m.id)}`, accept: [404] });
      ctx.log.info('PRA group policy member removed', { group, account, groupPolicyId: gp, memberId: m.id });
    }
    // Also with nothing deleted: a previous attempt may have deleted it and failed to provision.
    await this.provisionPolicy(gp, ctx, 'revoke');
  }

  /** Users whose name is `account` (PRA compares case-insensitively), in the configured provider. */
  private async users(account: string, ctx: CallContext, op: string): Promise<User[]> {
    const query: Record<string, string> = { username: account, ...(this.provider ? { security_provider_id: String(this.provider) } : {}) };
    const out: User[] = [];
    for (const u of await this.pages(ctx, op, '/user', query)) {
      if (!isObject(u) || !posInt(u['id']) || typeof u['username'] !== 'string' || !posInt(u['security_provider_id'])) {
        throw this.fail('response', `a user in PRA's answer has no id, username or security_provider_id: ${this.client.excerpt(show(u))}`, true);
      }
      if (u['username'].toLowerCase() !== account.toLowerCase()) continue;
      if (this.provider !== undefined && u['security_provider_id'] !== this.provider) continue;
      out.push({ id: u['id'], username: u['username'], securityProviderId: u['security_provider_id'] });
    }
    return out;
  }

  private async findUser(account: string, ctx: CallContext, op: string): Promise<User | undefined> {
    const found = await this.users(account, ctx, op);
    if (found.length > 1) {
      throw this.fail('ambiguous_user', `${found.length} PRA users are named ${show(account)} (security providers ${found.map((u) => u.securityProviderId).join(', ')}); set securityProviderId`);
    }
    return found[0];
  }

  private async userName(userId: number, ctx: CallContext): Promise<string | undefined> {
    const res = await this.call(ctx, { op: 'list', method: 'GET', path: `/user/${seg(userId)}`, accept: [404] });
    if (res.status === 404) return undefined;
    const u = this.client.json(res);
    if (!isObject(u) || typeof u['username'] !== 'string') throw this.client.invalid(res, 'user has no username');
    return u['username'];
  }

  // --- helpers ---

  private resource(grant: TargetGrant): { account: string; group: string } {
    const r = grant.resource;
    if (r.kind !== 'group') throw this.fail('invalid_input', `resource kind ${show(r.kind)} is not group: the BeyondTrust target adds users to group policies`);
    if (typeof r.account !== 'string' || !ACCOUNT.test(r.account) || r.account.trim() !== r.account) {
      throw this.fail('invalid_input', `account ${show(r.account)} is not a PRA username (1-64 characters, no control characters or surrounding spaces)`);
    }
    if (!this.groups.has(r.group)) throw this.fail('not_managed', `group ${show(r.group)} is not in this target's groups: (${[...this.groups].map(show).join(', ')})`);
    return { account: r.account, group: r.group };
  }

  private errorText(body: unknown): string {
    if (!isObject(body)) return 'no error message';
    const parts: string[] = [];
    if (typeof body['message'] === 'string') parts.push(body['message']);
    if (isObject(body['errors'])) {
      for (const [field, msgs] of Object.entries(body['errors'])) parts.push(`${field}: ${Array.isArray(msgs) ? msgs.map(String).join('; ') : String(msgs)}`);
    }
    return (parts.join(' / ') || 'no error message').slice(0, 400);
  }

  private fail(reason: Reason, message: string, retryable = false): TargetError {
    return new TargetError(this.id, message, retryable, { reason, ...(reason === 'response' ? { code: 'TARGET_RESPONSE_INVALID' } : {}) });
  }

  /** PRA wants membership changes one at a time; the lock also makes "list, add, list again" safe here. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }
}
