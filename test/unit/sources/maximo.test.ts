import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import fc from 'fast-check';
import nock from 'nock';
import { WogateError } from '../../../src/domain/index.js';
import { silentLogger } from '../../../src/log.js';
import { restIdOf } from '../../../src/sources/maximo-api.js';
import { maximoOptionsFromConfig } from '../../../src/sources/maximo-config.js';
import { formatMaximoDate, lowerKeys, mapMaximoAsset, mapMaximoRecord, parseMaximoDate } from '../../../src/sources/maximo-mapping.js';
import { createMaximoSource, MAXIMO_CONFIG_SCHEMA, MaximoSource, maximoMapping, type MaximoSourceOptions } from '../../../src/sources/maximo.js';
import { SourceError, type CallContext, type WebhookRequest } from '../../../src/sources/source.js';

const BASE = 'http://maximo.test';
const OS = '/maximo/api/os/mxapiwodetail';
const KEY = 'APIKEY-CANARY-4f1d2c9b8e7a';
const USER = 'MXINTADM';
const PASSWORD = 'hook-password-CANARY-51e0';
const HEADER_SECRET = 'header-secret-CANARY-0123456789ab';
const NOW = new Date('2025-03-04T13:12:10Z');
const ctx: CallContext = { now: NOW, log: silentLogger };

function options(over: Partial<MaximoSourceOptions> = {}): MaximoSourceOptions {
  return {
    id: 'mx', baseUrl: `${BASE}/maximo/api`, apiKey: KEY, timeoutMs: 2000, pollOverlapMs: 0,
    webhook: { basic: [{ username: USER, password: PASSWORD }], header: { name: 'X-Wogate-Token', secrets: [HEADER_SECRET] } },
    ...over,
  };
}
const source = (over: Partial<MaximoSourceOptions> = {}) => new MaximoSource(options(over));

/** A lean mxapiwodetail record, as GET ...?lean=1 answers (made-up values). */
function wo(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    href: 'http://localhost/maximo/api/os/mxapiwodetail/_Q0VOVFJBTC80MjAwMTc-', _rowstamp: '18842931', wonum: '4200170', siteid: 'CENTRAL',
    workorderid: 991204, description: 'Chiller 2 compressor rebuild', status: 'APPR', status_maxvalue: 'APPR', worktype: 'CM',
    assetnum: 'CH-0002', vendor: 'ACMEHVAC', schedstart: '2025-03-05T07:00:00-05:00', schedfinish: '2025-03-05T17:00:00-05:00',
    changedate: '2025-03-04T08:12:03-05:00',
    assignment: [{ laborcode: 'JDOE', status: 'ASSIGNED' }, { laborcode: 'ASMITH' }, { laborcode: 'JDOE' }],
    wostatus: [
      { status: 'WAPPR', changeby: 'MAXADMIN', changedate: '2025-03-04T07:00:00-05:00' },
      { status: 'APPR', changeby: 'SUPER1', changedate: '2025-03-04T08:00:00-05:00' },
      { status: 'APPR', changeby: 'SUPER1', changedate: '2025-03-04T08:05:00-05:00' },
    ],
    multiassetlocci: [{ assetnum: 'CH-0003' }],
    ...over,
  };
}

function basic(user = USER, pass = PASSWORD): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function hook(body: unknown, headers: Record<string, string> = { authorization: basic() }): WebhookRequest {
  return { headers, rawBody: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}

const message = (over: Record<string, unknown> = {}, record: Record<string, unknown> = wo()) => ({
  header: { messageID: '6612083.1741093924011', creationDateTime: '2025-03-04T08:12:04-05:00', action: 'Replace', ...over },
  workorder: record,
});

function thrown(f: () => unknown): WogateError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    return e as WogateError;
  }
  expect.fail('expected a WogateError');
}

async function failure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    return e as SourceError;
  }
  expect.fail('expected the call to fail');
}

function noSecrets(e: WogateError): void {
  const all = `${e.message} ${JSON.stringify(e.details ?? {})}`;
  for (const s of [KEY, PASSWORD, HEADER_SECRET, 'oslc.where', 'oslc.select']) expect(all).not.to.include(s);
}

describe('sources/maximo', () => {
  describe('verify: Basic credentials or a header secret, then the message id and date', () => {
    it('accepts the publish channel\'s Basic credentials and takes messageID and creationDateTime', () => {
      const d = source().verify(hook(message()), NOW);
      expect(d).to.deep.equal({ webhookId: '6612083.1741093924011', eventTime: new Date('2025-03-04T13:12:04Z') });
    });

    it('accepts the header secret instead, whatever case the header name was configured in', () => {
      const d = source().verify(hook(message(), { 'x-wogate-token': HEADER_SECRET }), NOW);
      expect(d.webhookId).to.equal('6612083.1741093924011');
    });

    it('accepts every configured credential during a rotation', () => {
      const s = source({ webhook: { basic: [{ username: USER, password: PASSWORD }, { username: 'NEWUSER', password: 'second-password-0123456' }] } });
      s.verify(hook(message(), { authorization: basic('NEWUSER', 'second-password-0123456') }), NOW);
      s.verify(hook(message(), { authorization: basic().replace('Basic', 'basic') }), NOW);
    });

    it('says which header is missing when no credentials came', () => {
      const e = thrown(() => source().verify(hook(message(), {}), NOW));
      expect(e.code).to.equal('HOOK_HEADER_MISSING');
      expect(e.message).to.include('authorization').and.include('x-wogate-token');
    });

    it('refuses wrong credentials without echoing any of them', () => {
      for (const headers of [{ authorization: basic(USER, 'wrong-password-000000') }, { authorization: basic('OTHER', PASSWORD) }, { 'x-wogate-token': `${HEADER_SECRET}x` }, { authorization: `Bearer ${PASSWORD}` }]) {
        const e = thrown(() => source().verify(hook(message(), headers), NOW));
        expect(e.code).to.equal('HOOK_SIGNATURE_INVALID');
        noSecrets(e);
      }
    });

    it('refuses Basic credentials in non-canonical base64, so no second spelling passes', () => {
      const token = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
      expect(token.endsWith('==')).to.equal(true);
      // The character before "==" carries four unused bits: flipping one decodes to the same bytes.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const last = token.length - 3;
      const twin = token.slice(0, last) + alphabet[alphabet.indexOf(token[last] as string) ^ 1] + '==';
      expect(Buffer.from(twin, 'base64').equals(Buffer.from(token, 'base64'))).to.equal(true);
      for (const variant of [twin, token.slice(0, -2)]) {
        expect(thrown(() => source().verify(hook(message(), { authorization: `Basic ${variant}` }), NOW)).code).to.equal('HOOK_SIGNATURE_INVALID');
      }
    });

    it('refuses a message older than maxAge and one dated beyond the future tolerance', () => {
      const s = source({ webhook: { basic: [{ username: USER, password: PASSWORD }], maxAgeMs: 3_600_000, futureToleranceMs: 60_000 } });
      expect(thrown(() => s.verify(hook(message({ creationDateTime: '2025-03-04T07:00:00-05:00' })), NOW)).code).to.equal('HOOK_SIGNATURE_STALE');
      expect(thrown(() => s.verify(hook(message({ creationDateTime: '2025-03-04T08:14:00-05:00' })), NOW)).code).to.equal('HOOK_SIGNATURE_FUTURE');
      s.verify(hook(message({ creationDateTime: '2025-03-04T08:12:50-05:00' })), NOW);
    });

    it('dates a message without creationDateTime by the order\'s changedate, and by receipt without either', () => {
      const s = source();
      const noDate = { workorder: wo() };
      expect(s.verify(hook(noDate), NOW).eventTime).to.deep.equal(new Date('2025-03-04T13:12:03Z'));
      const { changedate: _c, ...rest } = wo();
      expect(s.verify(hook({ workorder: rest }), NOW).eventTime).to.deep.equal(NOW);
      expect(thrown(() => s.verify(hook(message({ creationDateTime: '2025-03-04 08:12' })), NOW)).code).to.equal('HOOK_BODY_INVALID');
    });

    it('without a messageID keys the delivery on the order, its rowstamp and the body, stable across redeliveries', () => {
      const s = source();
      const body = JSON.stringify({ workorder: wo() });
      const a = s.verify(hook(body), NOW).webhookId;
      expect(a).to.equal(s.verify(hook(body), NOW).webhookId);
      expect(a).to.match(/^maximo:CENTRAL\/4200170@18842931:[0-9a-f]{32}$/);
      expect(a.endsWith(createHash('sha256').update(body).digest('hex').slice(0, 32))).to.equal(true);
      // An assignment added without touching the WO row keeps the rowstamp but is a new message.
      const b = s.verify(hook({ workorder: wo({ assignment: [{ laborcode: 'NEWTECH' }] }) }), NOW).webhookId;
      expect(b).not.to.equal(a);
    });

    it('refuses a body that is not JSON, after the credentials', () => {
      expect(thrown(() => source().verify(hook('<xml/>'), NOW)).code).to.equal('HOOK_BODY_INVALID');
      expect(thrown(() => source().verify(hook('<xml/>', {}), NOW)).code).to.equal('HOOK_HEADER_MISSING');
    });

    it('refuses a configuration Maximo could not authenticate against, without echoing secrets', () => {
      expect(thrown(() => source({ webhook: {} })).code).to.equal('CONFIG_INVALID');
      const e = thrown(() => source({ webhook: { basic: [{ username: USER, password: 'P4ss-w0rd' }] } }));
      expect(e.code).to.equal('CONFIG_INVALID');
      expect(e.message).not.to.include('P4ss-w0rd');
      expect(thrown(() => source({ webhook: { header: { name: 'Authorization', secrets: [HEADER_SECRET] } } })).code).to.equal('CONFIG_INVALID');
    });

    it('accepts any credentials it was configured with and any JSON body (property)', () => {
      fc.assert(fc.property(
        fc.stringMatching(/^[A-Za-z0-9_.@-]{1,20}$/), fc.string({ minLength: 16, maxLength: 40 }), fc.json(),
        (user, pass, body) => {
          const s = source({ webhook: { basic: [{ username: user, password: pass }] } });
          const req = hook(body, { authorization: basic(user, pass) });
          const d = s.verify(req, NOW);
          expect(d.webhookId).to.equal(s.verify(req, NOW).webhookId);
        },
      ), { numRuns: 200 });
    });

    it('refuses the credentials after any single bit flip (property)', () => {
      const s = source();
      const token = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
      const body = JSON.stringify(message());
      fc.assert(fc.property(fc.nat({ max: token.length * 8 - 1 }), (bit) => {
        const chars = [...token];
        const i = Math.floor(bit / 8);
        chars[i] = String.fromCharCode((chars[i] as string).charCodeAt(0) ^ (1 << (bit % 8)));
        const e = thrown(() => s.verify(hook(body, { authorization: `Basic ${chars.join('')}` }), NOW));
        expect(e.code).to.equal('HOOK_SIGNATURE_INVALID');
      }), { numRuns: 300 });
      fc.assert(fc.property(fc.nat({ max: HEADER_SECRET.length * 8 - 1 }), (bit) => {
        const chars = [...HEADER_SECRET];
        const i = Math.floor(bit / 8);
        chars[i] = String.fromCharCode((chars[i] as string).charCodeAt(0) ^ (1 << (bit % 8)));
        expect(thrown(() => s.verify(hook(body, { 'x-wogate-token': chars.join('') }), NOW)).code).to.be.oneOf(['HOOK_SIGNATURE_INVALID', 'HOOK_HEADER_MISSING']);
      }), { numRuns: 300 });
    });

    it('throws nothing but WogateError HOOK_* for any headers and body (property)', () => {
      const s = source();
      const headerValue = fc.oneof(fc.string(), fc.constant(basic()), fc.string().map((x) => `Basic ${x}`), fc.array(fc.string(), { maxLength: 3 }));
      fc.assert(fc.property(
        fc.dictionary(fc.constantFrom('authorization', 'x-wogate-token', 'content-type', 'x-other'), headerValue),
        fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.jsonValue().map((j) => Buffer.from(JSON.stringify(j) ?? 'null')), fc.constant(Buffer.from(JSON.stringify(message())))),
        (headers, rawBody) => {
          try {
            s.verify({ headers, rawBody }, NOW);
          } catch (e) {
            expect(e).to.be.instanceOf(WogateError);
            expect((e as WogateError).code).to.match(/^HOOK_/);
          }
        },
      ), { numRuns: 500 });
    });
  });

  describe('parseEvent: the order id always, its state when the message holds all of it', () => {
    const d = { webhookId: 'x', eventTime: NOW };

    it('reads a doorbell: SITEID/WONUM and no order', () => {
      expect(source().parseEvent({ header: { action: 'Replace' }, workorder: { wonum: '4200170', siteid: 'CENTRAL' } }, d)).to.deep.equal({ orderId: 'CENTRAL/4200170', type: 'Replace' });
      expect(source({ idFormat: 'wonum' }).parseEvent({ wonum: '4200170', siteid: 'CENTRAL', status: 'APPR' }, d)).to.deep.equal({ orderId: '4200170' });
    });

    it('maps a complete record with the same revision the API read gives', () => {
      const ev = source().parseEvent(message(), d);
      expect(ev.orderId).to.equal('CENTRAL/4200170');
      expect(ev.order).to.deep.include({ id: 'CENTRAL/4200170', status: 'approved', sourceStatus: 'APPR', vendorId: 'acmehvac', revision: '18842931', site: 'CENTRAL', type: 'corrective' });
      expect(ev.order?.technicianIds).to.deep.equal(['jdoe', 'asmith']);
      expect(ev.order?.assetIds).to.deep.equal(['ch-0002', 'ch-0003']);
    });

    it('reads the upper-case attribute names a JSON mapping copies from MIF', () => {
      const upper = Object.fromEntries(Object.entries(wo()).map(([k, v]) => [k.toUpperCase(), v]));
      expect(source().parseEvent({ HEADER: { MESSAGEID: 'm1' }, WORKORDER: upper }, d).order?.revision).to.equal('18842931');
    });

    it('names the attribute when the order can\'t be identified or its status is unknown', () => {
      const e = thrown(() => source().parseEvent({ workorder: { wonum: '1' } }, d));
      expect(e.code).to.equal('HOOK_MAPPING_FAILED');
      expect(e.details).to.deep.include({ field: 'site', path: 'siteid' });
      const s = thrown(() => source().parseEvent(message({}, wo({ status: 'XAPPR', status_maxvalue: 'XAPPR' })), d));
      expect(s.message).to.include('"XAPPR"').and.include('WAPPR, APPR');
      expect(thrown(() => source().parseEvent([1, 2], d)).code).to.equal('HOOK_MAPPING_FAILED');
      expect(thrown(() => source().parseEvent({ workorder: [wo(), wo()] }, d)).message).to.include('one work order');
      expect(source().parseEvent({ workorder: [wo()] }, d).order?.id).to.equal('CENTRAL/4200170');
    });

    it('throws nothing but HOOK_MAPPING_FAILED for arbitrary JSON, also shaped like a work order (property)', () => {
      const s = source();
      const anyValue = fc.oneof(fc.jsonValue(), fc.constantFrom('APPR', 'WAPPR', '2025-03-04T08:12:03-05:00', '123', ''));
      const record = fc.dictionary(fc.constantFrom('wonum', 'siteid', 'status', 'status_maxvalue', '_rowstamp', 'vendor', 'assetnum', 'schedstart', 'schedfinish', 'changedate', 'assignment', 'wostatus', 'multiassetlocci', 'worktype', '__proto__', 'constructor'), anyValue);
      fc.assert(fc.property(fc.oneof(fc.jsonValue(), record, record.map((r) => ({ workorder: { ...wo(), ...r } }))), (payload) => {
        try {
          s.parseEvent(payload, d);
        } catch (e) {
          expect(e).to.be.instanceOf(WogateError);
          expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        }
      }), { numRuns: 1000 });
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
  });

  describe('mapping a lean record', () => {
    const m = maximoMapping(options());
    const map = (r: Record<string, unknown>, mm = m) => mapMaximoRecord('mx', lowerKeys(r), mm);

    it('compares the internal status, not the customer\'s synonym', () => {
      expect(map(wo({ status: 'APPROVED-FIN', status_maxvalue: 'APPR' }))).to.deep.include({ status: 'approved', sourceStatus: 'APPR' });
      expect(map(wo({ status: 'INPRG', status_maxvalue: undefined })).status).to.equal('in_progress');
      for (const [code, status] of [['WSCH', 'approved'], ['WMATL', 'on_hold'], ['WPCOND', 'on_hold'], ['COMP', 'completed'], ['CLOSE', 'closed'], ['CAN', 'cancelled'], ['HISTEDIT', 'closed'], ['WAPPR', 'awaiting_approval']]) {
        expect(map(wo({ status_maxvalue: code })).status).to.equal(status);
      }
    });

    it('counts each person who set an approving status once, at their first approval', () => {
      const o = map(wo({ wostatus: [...(wo().wostatus as object[]), { status: 'APPRFIN', status_maxvalue: 'APPR', changeby: 'MGR2', changedate: '2025-03-04T09:00:00-05:00' }, { status: 'INPRG', changeby: 'TECH' }] }));
      expect(o.approvals).to.deep.equal([{ by: 'super1', at: new Date('2025-03-04T13:00:00Z') }, { by: 'mgr2', at: new Date('2025-03-04T14:00:00Z') }]);
      expect(map(wo({ wostatus: undefined })).approvals).to.deep.equal([]);
    });

    it('does not count whoever set WSCH (PM generation, cron users), but counts a synonym mapped to approved', () => {
      const history = [{ status: 'WSCH', changeby: 'CRONUSER' }, { status: 'APPRX', changeby: 'MGR3' }, { status: 'WMATL', changeby: 'PLANNER' }];
      expect(map(wo({ wostatus: history })).approvals).to.deep.equal([]);
      const syn = maximoMapping(options({ statusMap: { APPRX: 'approved', WMATL: 'approved' } }));
      expect(map(wo({ wostatus: history }), syn).approvals).to.deep.equal([{ by: 'mgr3' }]);
    });

    it('reads technicians from labor assignments or from a delimited attribute', () => {
      expect(map(wo({ assignment: undefined })).technicianIds).to.deep.equal([]);
      const custom = maximoMapping(options({ fields: { technicians: { select: 'x_vendortechs', path: 'x_vendortechs', separator: ';' } } }));
      expect(map(wo({ x_vendortechs: 'JDOE; ASMITH;;' }), custom).technicianIds).to.deep.equal(['jdoe', 'asmith']);
    });

    it('takes the scheduled window, falls back to target dates, and leaves half a window empty', () => {
      expect(map(wo()).window).to.deep.equal({ start: new Date('2025-03-05T12:00:00Z'), end: new Date('2025-03-05T22:00:00Z') });
      const t = map(wo({ schedstart: null, schedfinish: undefined, targstartdate: '2025-03-06T08:00:00+01:00', targcompdate: '2025-03-06T18:00:00+01:00' }));
      expect(t.window).to.deep.equal({ start: new Date('2025-03-06T07:00:00Z'), end: new Date('2025-03-06T17:00:00Z') });
      expect(map(wo({ schedfinish: null })).window).to.deep.equal({ start: new Date('2025-03-05T12:00:00Z'), end: new Date('2025-03-05T12:00:00Z') });
      expect(map(wo({ schedstart: null, schedfinish: null })).window).to.deep.equal({ start: new Date(0), end: new Date(0) });
    });

    it('maps what Maximo leaves empty to what grants least', () => {
      const o = map(wo({ vendor: null, worktype: 'XYZ', assetnum: undefined, multiassetlocci: undefined, description: undefined }));
      expect(o).to.deep.include({ vendorId: '', type: 'planned', assetIds: [] });
      expect(o).not.to.have.property('title');
    });

    it('qualifies asset ids by site when asked, for both orders and assets', () => {
      const q = maximoMapping(options({ qualifyAssetsBySite: true }));
      expect(map(wo(), q).assetIds).to.deep.equal(['central/ch-0002', 'central/ch-0003']);
    });

    it('uses changedate as revision when configured, and explains a missing rowstamp', () => {
      expect(map(wo(), maximoMapping(options({ revision: 'changedate' }))).revision).to.equal('2025-03-04T13:12:03.000Z');
      const e = thrown(() => map(wo({ _rowstamp: undefined })));
      expect(e.message).to.include('_rowstamp').and.include('revision: changedate');
    });

    it('accepts only dates with an offset that exist', () => {
      expect(parseMaximoDate('f', 'p', '2025-03-04T08:12:03.5Z')).to.deep.equal(new Date('2025-03-04T08:12:03.500Z'));
      for (const bad of ['2025-03-04T08:12:03', '2025-02-30T08:00:00Z', '2025-03-04T24:00:00Z', 1741093923, '2025-03-04']) {
        expect(() => parseMaximoDate('f', 'p', bad)).to.throw(WogateError);
      }
      expect(formatMaximoDate(new Date('2025-03-04T13:12:03.900Z'))).to.equal('2025-03-04T13:12:03+00:00');
    });

    it('maps an asset\'s class, criticality, site and location; an unknown priority is left to the overlay', () => {
      const a = { classAttribute: 'assettype', criticalityAttribute: 'priority', criticalityMap: { 9: 'critical' as const, 1: 'low' as const }, qualifyBySite: false };
      expect(mapMaximoAsset(lowerKeys({ ASSETNUM: 'PLC-1', SITEID: 'NORTH', DESCRIPTION: 'Line 1 PLC', LOCATION: 'NORTH-L1', ASSETTYPE: 'PLC', PRIORITY: 9 }), a))
        .to.deep.equal({ id: 'plc-1', name: 'Line 1 PLC', class: 'PLC', criticality: 'critical', site: 'NORTH', zone: 'NORTH-L1' });
      expect(mapMaximoAsset({ assetnum: 'X', priority: 42 }, { ...a, classMap: {} })).to.deep.equal({ id: 'x' });
    });

    it('keeps only the rest id of an href, whatever host it names', () => {
      expect(restIdOf('http://localhost/maximo/oslc/os/mxapiwodetail/_Q0VOVFJBTC80MjAwMTc-', 'mxapiwodetail')).to.equal('_Q0VOVFJBTC80MjAwMTc-');
      expect(restIdOf('oslc/os/MXAPIWODETAIL/_QkVERk9SRC8xMDAw?lean=1', 'mxapiwodetail')).to.equal('_QkVERk9SRC8xMDAw');
      expect(restIdOf('http://evil/os/mxapiwodetail/..', 'mxapiwodetail')).to.equal(undefined);
      expect(restIdOf('http://evil/os/mxapiasset/_QQ--', 'mxapiwodetail')).to.equal(undefined);
    });
  });

  describe('API calls', () => {
    let s: MaximoSource;
    before(() => nock.disableNetConnect());
    after(() => nock.enableNetConnect());
    afterEach(() => {
      nock.cleanAll();
      s?.close();
    });

    const page = (members: unknown[], pagenum = 1, next = false) => ({
      member: members, href: 'http://localhost/maximo/api/os/mxapiwodetail',
      responseInfo: { pagenum, href: 'x', ...(next ? { nextPage: { href: `http://localhost/maximo/api/os/mxapiwodetail?pageno=${pagenum + 1}` } } : {}) },
    });

    it('re-reads one order by site and wonum with the API key, lean=1 and the children it maps', async () => {
      let q: Record<string, string> = {};
      nock(BASE, { reqheaders: { apikey: KEY } }).get(OS).query((x) => ((q = x as Record<string, string>), true)).reply(200, page([wo({ wonum: '42001700' }), wo()]));
      s = source({ sites: ['CENTRAL', 'EAST'] });
      const o = await s.api.fetchOrder('CENTRAL/4200170', ctx);
      expect(o?.id).to.equal('CENTRAL/4200170');
      expect(q.lean).to.equal('1');
      expect(q['oslc.where']).to.equal('wonum="4200170" and siteid="CENTRAL" and siteid in ["CENTRAL","EAST"] and istask=0');
      expect(q['oslc.select']).to.include('rel.assignment{laborcode}').and.include('rel.wostatus{status,changeby,changedate}').and.include('rel.multiassetlocci{assetnum}');
      expect(q['oslc.orderBy']).to.equal('+workorderid');
    });

    it('answers undefined for an order Maximo does not list, and refuses an id it can\'t look up', async () => {
      nock(BASE).get(OS).query(true).reply(200, page([]));
      s = source();
      expect(await s.api.fetchOrder('CENTRAL/NOPE', ctx)).to.equal(undefined);
      for (const bad of ['NOSLASH', 'CENTRAL/10"0', 'CENTRAL/10%']) expect((await failure(s.api.fetchOrder(bad, ctx))).retryable).to.equal(false);
    });

    it('treats 401 as final and names the call, never the key or the query', async () => {
      nock(BASE).get(OS).query(true).reply(401, { Error: { reasonCode: 'BMXAA7901E', message: 'BMXAA7901E - You cannot log in at this time.', statusCode: '401' } });
      s = source();
      const e = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include(`GET ${OS} answered 401`).and.include('BMXAA7901E').and.include('API key');
      noSecrets(e);
    });

    it('retries 429 and 503 after Retry-After, and 500 and 408', async () => {
      s = source();
      nock(BASE).get(OS).query(true).reply(429, 'slow down', { 'retry-after': '7' });
      const e = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details).to.deep.include({ retryAfterMs: 7000, status: 429 });
      for (const status of [500, 503, 408]) {
        nock(BASE).get(OS).query(true).reply(status, '');
        expect((await failure(s.api.fetchOrder('CENTRAL/1', ctx))).retryable).to.equal(true);
      }
    });

    it('gives up on a slow answer at the deadline, and on a dropped connection, as retryable', async () => {
      s = source({ timeoutMs: 100 });
      nock(BASE).get(OS).query(true).delay(2000).reply(200, page([]));
      const e = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('no answer within 100 ms');
      // The dropped connection is answered at once: a generous deadline, so a stalled loop can't make it a timeout.
      s.close();
      s = source();
      nock(BASE).get(OS).query(true).replyWithError(Object.assign(new Error(`connect to ${BASE}/?apikey=${KEY}`), { code: 'ECONNRESET' }));
      const n = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(n.message).to.include('network error ECONNRESET');
      noSecrets(n);
    });

    it('reports malformed JSON, an HTML login page and a non-lean answer as SOURCE_RESPONSE_INVALID', async () => {
      s = source();
      nock(BASE).get(OS).query(true).reply(200, '{"member": [', { 'content-type': 'application/json' });
      expect((await failure(s.api.fetchOrder('CENTRAL/1', ctx))).details?.code).to.equal('SOURCE_RESPONSE_INVALID');
      nock(BASE).get(OS).query(true).reply(200, '<html><title>Maximo Login</title></html>', { 'content-type': 'text/html; charset=utf-8' });
      const h = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(h.details?.code).to.equal('SOURCE_RESPONSE_INVALID');
      expect(h.message).to.include('text/html that is not JSON');
      nock(BASE).get(OS).query(true).reply(200, { 'rdfs:member': [] });
      expect((await failure(s.api.fetchOrder('CENTRAL/1', ctx))).message).to.include('lean');
    });

    it('does not follow a redirect', async () => {
      s = source();
      nock(BASE).get(OS).query(true).reply(302, '', { location: 'http://elsewhere.test/login' });
      const e = await failure(s.api.fetchOrder('CENTRAL/1', ctx));
      expect(e.message).to.include('redirects are not followed');
    });

    it('reports a record it can\'t map as SOURCE_RESPONSE_INVALID, not retryable, naming the attribute', async () => {
      s = source();
      nock(BASE).get(OS).query(true).reply(200, page([wo({ status_maxvalue: 'ZZZ' })]));
      const e = await failure(s.api.fetchOrder('CENTRAL/4200170', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.details).to.deep.include({ code: 'SOURCE_RESPONSE_INVALID', field: 'status', path: 'status_maxvalue' });
    });

    it('polls every page by changedate (>=, overlap behind the cursor) and moves the cursor to the newest change', async () => {
      const seen: Record<string, string>[] = [];
      const cap = (x: object) => (seen.push(x as Record<string, string>), true);
      nock(BASE).get(OS).query((x) => x.pageno === '1' && cap(x)).reply(200, page([wo({ wonum: 'A', changedate: '2025-03-04T08:00:00-05:00' })], 1, true));
      nock(BASE).get(OS).query((x) => x.pageno === '2' && cap(x)).reply(200, page([wo({ wonum: 'B', changedate: '2025-03-04T08:30:00-05:00' })], 2, true));
      nock(BASE).get(OS).query((x) => x.pageno === '3' && cap(x)).reply(200, page([wo({ wonum: 'C', changedate: '2025-03-04T08:30:00-05:00' })], 3));
      s = source({ pollOverlapMs: 60_000, pageSize: 1 });
      const r = await s.api.poll('changedate:2025-03-04T12:00:00.000Z', NOW, ctx);
      expect(r.orders.map((o) => o.id)).to.deep.equal(['CENTRAL/A', 'CENTRAL/B', 'CENTRAL/C']);
      expect(r.cursor).to.equal('changedate:2025-03-04T13:30:00.000Z');
      expect(seen[0]?.['oslc.where']).to.equal('changedate>="2025-03-04T11:59:00+00:00" and istask=0');
      expect(seen[0]?.['oslc.orderBy']).to.equal('+changedate,+workorderid');
      expect(seen[0]?.['oslc.pageSize']).to.equal('1');
      expect(seen.map((x) => x.pageno)).to.deep.equal(['1', '2', '3']);
    });

    it('fails the whole poll when a page fails, so the cursor never passes what was not read', async () => {
      nock(BASE).get(OS).query((x) => x.pageno === '1').reply(200, page([wo()], 1, true));
      nock(BASE).get(OS).query((x) => x.pageno === '2').reply(500, 'boom');
      s = source();
      const e = await failure(s.api.poll('changedate:2025-03-04T12:00:00.000Z', NOW, ctx));
      expect(e.retryable).to.equal(true);
    });

    it('keeps the cursor at a record seen twice in one poll, since the pages shifted under the read', async () => {
      nock(BASE).get(OS).query((x) => x.pageno === '1').reply(200, page([wo({ wonum: 'A', changedate: '2025-03-04T08:00:00-05:00' })], 1, true));
      nock(BASE).get(OS).query((x) => x.pageno === '2').reply(200, page([wo({ wonum: 'A', changedate: '2025-03-04T08:40:00-05:00', _rowstamp: '18842999' })], 2));
      s = source();
      const r = await s.api.poll(undefined, new Date('2025-03-04T12:00:00Z'), ctx);
      expect(r.orders).to.have.length(1);
      expect(r.orders[0]?.revision).to.equal('18842999');
      expect(r.cursor).to.equal('changedate:2025-03-04T13:00:00.000Z');
    });

    it('starts from `since` when the cursor is not its own, and stops a server that ignores pageno', async () => {
      let where = '';
      nock(BASE).get(OS).query((x) => ((where = String(x['oslc.where'])), true)).reply(200, page([]));
      s = source();
      expect((await s.api.poll('42', new Date('2025-03-01T00:00:00Z'), ctx)).cursor).to.equal('changedate:2025-03-01T00:00:00.000Z');
      expect(where).to.include('changedate>="2025-03-01T00:00:00+00:00"');
      nock(BASE).get(OS).query(true).times(2).reply(200, page([wo()], 1, true));
      expect((await failure(s.api.poll(undefined, NOW, ctx))).message).to.include('paging is not advancing');
    });

    it('lists open orders: not in history, in scope, and mapped to a status that can hold access', async () => {
      let q: Record<string, string> = {};
      nock(BASE).get(OS).query((x) => ((q = x as Record<string, string>), true))
        .reply(200, page([wo({ wonum: '1' }), wo({ wonum: '2', status_maxvalue: 'COMP' }), wo({ wonum: '3', status_maxvalue: 'WAPPR' }), wo({ wonum: '4', status_maxvalue: 'WMATL' })]));
      s = source({ sites: ['CENTRAL'] });
      expect((await s.api.listOpen(ctx)).map((o) => o.id)).to.deep.equal(['CENTRAL/1', 'CENTRAL/3', 'CENTRAL/4']);
      expect(q['oslc.where']).to.equal('historyflag=0 and siteid in ["CENTRAL"] and istask=0');
    });

    it('lists assets from mxapiasset', async () => {
      let q: Record<string, string> = {};
      nock(BASE).get('/maximo/api/os/mxapiasset').query((x) => ((q = x as Record<string, string>), true))
        .reply(200, { member: [{ href: 'x', assetnum: 'PLC-1', siteid: 'NORTH', assettype: 'PLC', priority: 8, location: 'L1' }], responseInfo: { pagenum: 1 } });
      s = source({ sites: ['NORTH'], assets: { where: 'status="OPERATING"' } });
      expect(await s.api.listAssets(ctx)).to.deep.equal([{ id: 'plc-1', class: 'PLC', criticality: 'critical', site: 'NORTH', zone: 'L1' }]);
      expect(q['oslc.select']).to.equal('assetnum,siteid,description,location,assettype,priority');
      expect(q['oslc.where']).to.equal('siteid in ["NORTH"] and status="OPERATING"');
    });

    it('writes a worklog entry through the member URL on the configured host, merging, never following href\'s host', async () => {
      let body: unknown;
      nock(BASE).get(OS).query((x) => x['oslc.select'] === 'wonum,siteid').reply(200, page([{ href: 'http://internal-node:9080/maximo/api/os/mxapiwodetail/_Q0VOVFJBTC80MjAwMTc-', wonum: '4200170', siteid: 'CENTRAL' }]));
      nock(BASE, { reqheaders: { apikey: KEY, 'x-method-override': 'PATCH', patchtype: 'MERGE', 'content-type': 'application/json' } })
        .post(`${OS}/_Q0VOVFJBTC80MjAwMTc-`, (b) => ((body = b), true)).query({ lean: '1' }).reply(204);
      s = source({ writeBack: { logType: 'CLIENTNOTE', clientViewable: false } });
      const long = `wogate access trail: ${'x'.repeat(150)}\naccess GRANTED: JDOE -> CH-0002\u0007`;
      await s.api.writeBack('CENTRAL/4200170', long, ctx);
      const entry = (body as { worklog: Record<string, unknown>[] }).worklog[0];
      expect((entry?.description as string).length).to.equal(100);
      expect(entry).to.deep.include({ logtype: 'CLIENTNOTE', clientviewable: false, description_longdescription: long.replace('\u0007', '').trim() });
    });

    it('fails the write-back, not retryable, for an order Maximo does not have', async () => {
      nock(BASE).get(OS).query(true).reply(200, page([]));
      s = source();
      const e = await failure(s.api.writeBack('CENTRAL/9', 'note', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('not found');
    });

    it('refuses an order number that exists in several sites when ids are bare wonums', async () => {
      nock(BASE).get(OS).query((x) => x['oslc.where'] === 'wonum="4200170" and istask=0').reply(200, page([wo(), wo({ siteid: 'EAST' })]));
      s = source({ idFormat: 'wonum' });
      expect((await failure(s.api.fetchOrder('4200170', ctx))).message).to.include('2 sites');
    });
  });

  describe('configuration', () => {
    const block = {
      baseUrl: 'https://maximo.example.com/maximo/api',
      apiKey: 'resolved-api-key',
      sites: ['CENTRAL'],
      timeout: '20s',
      pollOverlap: '2m',
      statusMap: { APPRFIN: 'approved' },
      fields: { technicians: { select: 'rel.assignment{laborcode}', path: 'assignment', idField: 'laborcode' }, approvals: false },
      assets: { criticalityMap: { 1: 'critical' } },
      writeBack: { logType: 'WORK' },
      webhook: { basic: [{ username: 'MXINTADM', password: 'resolved-password-0123' }], maxAge: '12h' },
    };

    it('is a draft-07 schema that takes the documented block and refuses unknown keys and a webhook without credentials', () => {
      const ajv = new Ajv({ allErrors: true, strict: false });
      const validate = ajv.compile({
        $schema: 'http://json-schema.org/draft-07/schema#',
        definitions: { secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' }, duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' } },
        ...MAXIMO_CONFIG_SCHEMA,
      });
      const refs = { ...block, apiKey: 'env:MAXIMO_APIKEY', webhook: { basic: [{ username: 'MXINTADM', password: 'env:MAXIMO_HOOK_PASSWORD' }], header: { name: 'X-Wogate-Token', secrets: ['file:/etc/wogate/mx-hook'] } } };
      expect(validate(refs), JSON.stringify(validate.errors)).to.equal(true);
      expect(validate({ ...refs, apikey: 'x' })).to.equal(false);
      expect(validate({ ...refs, apiKey: 'inline-secret' })).to.equal(false);
      expect(validate({ ...refs, webhook: { maxAge: '1h' } })).to.equal(false);
    });

    it('turns the block into options: durations, merged maps, approvals switched off', () => {
      const o = maximoOptionsFromConfig('mx', block);
      expect(o).to.deep.include({ timeoutMs: 20_000, pollOverlapMs: 120_000, sites: ['CENTRAL'] });
      expect(o.webhook.maxAgeMs).to.equal(43_200_000);
      const s = createMaximoSource('mx', block);
      expect(s.mapping.statusMap.APPRFIN).to.equal('approved');
      expect(s.mapping.statusMap.APPR).to.equal('approved');
      expect(s.mapping.approvals).to.equal(undefined);
      s.close();
      expect(thrown(() => maximoOptionsFromConfig('mx', { ...block, pageSize: 'ten' })).message).to.include('pageSize');
      expect(thrown(() => createMaximoSource('mx', { ...block, baseUrl: 'https://u:p@maximo.example.com/maximo/api' })).code).to.equal('CONFIG_INVALID');
    });
  });
});
