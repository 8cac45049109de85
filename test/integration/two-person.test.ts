import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import type { BreakGlassRequest } from '../../src/domain/breakglass.js';
import { BREAK_GLASS_BODY, startBreakGlassDaemon, type BreakGlassDaemon } from '../helpers/breakglass.js';
import { startOidcProvider, WOGATE_AUDIENCE, type OidcTestProvider } from '../helpers/oidc.js';

// The two-person rule counts people, not credentials: an OIDC identity and the API token its owner
// holds are one person (auth.oidc.personClaim = the token's --owner, canonical), on a real daemon
// with a real OpenID provider.
describe('two-person rule across OIDC sign-ins and owned API tokens', function () {
  this.timeout(60_000);
  let idp: OidcTestProvider;
  let bg: BreakGlassDaemon;
  const operators = { wogate_roles: ['wogate-operators'] };

  before(async () => {
    // Client ids are the subjects: "alice" is the same person as the token owner "Alice".
    idp = await startOidcProvider({ users: { alice: { claims: operators }, carol: { claims: operators }, 'svc-x': { claims: { ...operators, person: 'bob' } } } });
    bg = await startBreakGlassDaemon({
      edit: (c) => {
        c.auth = { oidc: { issuer: idp.issuer, audience: WOGATE_AUDIENCE, roleClaim: 'wogate_roles', roles: { 'wogate-operators': 'operator' } } };
        c.breakGlass = { maxDuration: '1h', reviewDue: '24h' };
      },
    });
  });
  after(async () => {
    await bg?.stop();
    await idp?.close();
  });

  const ask = async (bearer: string): Promise<string> => {
    const r = await bg.call(bearer, 'POST', '/break-glass', BREAK_GLASS_BODY);
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    return (r.body.request as BreakGlassRequest).id;
  };

  it('refuses alice\'s own token approving what alice requested through OIDC, and the other way round', async () => {
    const store = bg.daemon.runtime.store;
    const aliceToken = (await createToken(store, 'alice-laptop', ['breakglass', 'grants:read'], new Date(), { owner: 'Alice' })).token;
    const oidc = await idp.token('alice');

    const viaOidc = await ask(oidc);
    expect((await bg.stored(viaOidc)).requesterPerson).to.equal('alice');
    const r1 = await bg.call(aliceToken, 'POST', `/break-glass/${viaOidc}/approve`);
    expect(r1.status).to.equal(403);
    expect(r1.body.error?.message).to.contain('two-person rule');

    const viaToken = await ask(aliceToken);
    const r2 = await bg.call(oidc, 'POST', `/break-glass/${viaToken}/approve`);
    expect(r2.status).to.equal(403);
    expect(r2.body.error?.code).to.equal('AUTH_FORBIDDEN');
    for (const id of [viaOidc, viaToken]) expect((await bg.stored(id)).state).to.equal('requested');
    const refused = (await bg.audit()).filter((a) => a.action === 'breakglass.refused' && [viaOidc, viaToken].includes(a.subject));
    expect(refused.map((a) => a.details.person)).to.deep.equal(['alice', 'alice']);
  });

  it('lets another person approve through OIDC what alice requested with her token', async () => {
    const aliceToken = (await createToken(bg.daemon.runtime.store, 'alice-ci', ['breakglass'], new Date(), { owner: 'alice' })).token;
    const id = await ask(aliceToken);
    const r = await bg.call(await idp.token('carol'), 'POST', `/break-glass/${id}/approve`);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.request).to.include({ state: 'approved', requester: 'token:alice-ci', requesterPerson: 'alice', approver: 'oidc:carol', approverPerson: 'carol' });
    await bg.call(aliceToken, 'POST', `/break-glass/${id}/close`, { reason: 'test over' });
  });

  it('reads the person from auth.oidc.personClaim when it is not sub', async () => {
    const bgp = await startBreakGlassDaemon({
      edit: (c) => {
        c.auth = { oidc: { issuer: idp.issuer, audience: WOGATE_AUDIENCE, roleClaim: 'wogate_roles', personClaim: 'person', roles: { 'wogate-operators': 'operator' } } };
        c.breakGlass = { maxDuration: '1h', reviewDue: '24h' };
      },
    });
    try {
      const id = (await bgp.call(bgp.tokens.bob, 'POST', '/break-glass', BREAK_GLASS_BODY)).body.request?.id as string;
      // svc-x's person claim says bob: bob's token asked, so bob (signed in as svc-x) can't approve.
      const r = await bgp.call(await idp.token('svc-x'), 'POST', `/break-glass/${id}/approve`);
      expect(r.status).to.equal(403);
      expect(r.body.error?.message).to.contain('two-person rule');
      // carol's token has no "person" claim: nobody, so refused for that, not for being bob.
      const c = await bgp.call(await idp.token('carol'), 'POST', `/break-glass/${id}/approve`);
      expect(c.body.error?.code).to.equal('AUTH_NO_PERSON');
    } finally {
      await bgp.stop();
    }
  });
});
