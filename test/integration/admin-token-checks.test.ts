import { expect } from 'chai';
import type { Role } from '../../src/api/roles.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startOidcProvider, WOGATE_AUDIENCE, type OidcTestProvider } from '../helpers/oidc.js';

const ROLES: Record<string, Role> = { 'wogate-operators': 'operator' };

// The admin API's OIDC checks beyond signature and claims, through a real daemon and the real provider.
describe('admin API: OIDC token type, client allow-list and keys without kid', function () {
  this.timeout(60_000);
  let idp: OidcTestProvider;
  let t: TestDaemon | undefined;
  before(async () => {
    idp = await startOidcProvider({ users: { ops: { claims: { wogate_roles: ['wogate-operators'] } }, robot: { claims: { wogate_roles: ['wogate-operators'] } } } });
  });
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });
  after(async () => idp?.close());

  const daemon = async (oidc: Record<string, unknown> = {}) => {
    t = await startDaemon({ edit: (c) => (c.auth = { oidc: { issuer: idp.issuer, audience: WOGATE_AUDIENCE, roles: ROLES, ...oidc } }) });
    return t;
  };
  const grants = async (d: TestDaemon, bearer: string) => {
    const res = await fetch(`${d.daemon.url}/v1/grants`, { headers: { authorization: `Bearer ${bearer}` } });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    return { status: res.status, ...body };
  };
  /** The aggregated auth.refused records after the open windows are written. */
  const refusedFor = async (d: TestDaemon, reason: string) => {
    await d.daemon.refusals.flush();
    return (await d.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === 'auth.refused' && r.details.reason === reason);
  };

  it('answers a token without kid, against a JWKS with two keys for its algorithm, with 401 (not 503), audited', async () => {
    await idp.rotateKeys(); // two RS256 keys published, as during a rollover
    const d = await daemon();
    const r = await grants(d, await idp.sign({ sub: 'ops', wogate_roles: ['wogate-operators'] }, { noKid: true }));
    expect(r.status).to.equal(401);
    expect(r.error?.code).to.equal('AUTH_INVALID');
    expect(r.error?.message).to.match(/no kid/);
    expect(await refusedFor(d, 'ambiguous_key')).to.have.length(1);
    // The same provider's tokens with their kid still work.
    expect((await grants(d, await idp.token('ops'))).status).to.equal(200);
  });

  it('refuses a token without the required typ (auth.oidc.requireTyp) with 401 wrong_type, and takes the provider\'s at+jwt tokens', async () => {
    const d = await daemon({ requireTyp: 'at+jwt' });
    expect((await grants(d, await idp.token('ops'))).status).to.equal(200);
    // An ID token or any other JWT of the same issuer, signed with its real key.
    const r = await grants(d, await idp.sign({ sub: 'ops', wogate_roles: ['wogate-operators'] }, { typ: 'JWT' }));
    expect(r.status).to.equal(401);
    expect(r.error?.message).to.match(/typ/);
    expect((await refusedFor(d, 'wrong_type'))[0]?.details).to.include({ aggregated: true, status: 401, code: 'AUTH_INVALID', count: 1 });
  });

  it('accepts only the clients in auth.oidc.allowedClients (azp, else client_id), 401 client_not_allowed for others', async () => {
    const d = await daemon({ allowedClients: ['ops'] });
    expect((await grants(d, await idp.token('ops'))).status).to.equal(200);
    const other = await grants(d, await idp.token('robot'));
    expect(other.status).to.equal(401);
    expect(other.error?.message).to.match(/allowedClients/);
    expect((await grants(d, await idp.sign({ sub: 'ops', wogate_roles: ['wogate-operators'], azp: 'ops' }))).status).to.equal(200);
    expect((await grants(d, await idp.sign({ sub: 'ops', wogate_roles: ['wogate-operators'] }))).status, 'no client named').to.equal(401);
    expect((await refusedFor(d, 'client_not_allowed'))[0]?.details).to.include({ count: 2 });
  });
});
