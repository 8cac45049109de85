import { Ajv } from 'ajv';
import { expect } from 'chai';
import fc from 'fast-check';
import nock from 'nock';
import { parse as parseYaml } from 'yaml';
import { WogateError } from '../../../src/domain/errors.js';
import { silentLogger } from '../../../src/log.js';
import { compareOrderKeys } from '../../../src/sources/sap-api.js';
import { DEFAULT_STATUS_RULES, mapSapEquipment, mapSapOrder, type SapMappingOptions } from '../../../src/sources/sap-mapping.js';
import { basicAuthorization } from '../../../src/sources/sap-webhook.js';
import { SAP_SOURCE_SCHEMA, SapSource, sapSourceOptions, type SapSourceOptions } from '../../../src/sources/sap.js';
import { SourceError, type CallContext, type WebhookRequest } from '../../../src/sources/source.js';

const BASE = 'http://s4.test';
const SVC = '/sap/opu/odata/sap/API_MAINTENANCEORDER';
const PASSWORD = 'CANARY-pw-7f3a-never-print';
const HOOK_PASSWORD = 'hook-secret-3b1d-never-print';
const ctx: CallContext = { now: new Date('2025-03-04T13:15:00Z'), log: silentLogger };

function rec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    MaintenanceOrder: '4001873', MaintenanceOrderType: 'YA01', MaintenanceOrderDesc: 'Boiler burner service by vendor',
    MaintOrdBasicStartDateTime: '/Date(1741161600000+0000)/', MaintOrdBasicEndDateTime: '/Date(1741197600000+0000)/',
    MaintenancePlanningPlant: '1710', MaintenancePlant: '1710', Equipment: '000217100044', FunctionalLocation: '1710-SPA-UTIL-BLR1',
    SystemStatusText: 'REL  NMAT PRC', UserStatusText: 'VNDR', LastChangeDateTime: '/Date(1741093924000+0000)/', LastChangeByUser: 'PLANNER7',
    to_MaintenanceOrderPartner: {
      results: [
        { MaintenanceOrder: '4001873', PartnerFunction: 'VN', MaintenanceOrderPartner: '0017300001' },
        { MaintenanceOrder: '4001873', PartnerFunction: 'VW', MaintenanceOrderPartner: '00000042' },
        { MaintenanceOrder: '4001873', PartnerFunction: 'VW', MaintenanceOrderPartner: '00000043' },
        { MaintenanceOrder: '4001873', PartnerFunction: 'AB', MaintenanceOrderPartner: '10000123' },
      ],
    },
    ...over,
  };
}

function options(over: Partial<SapSourceOptions> = {}): SapSourceOptions {
  return {
    id: 'sap',
    baseUrl: BASE,
    auth: { type: 'basic', username: 'WOGATE', password: PASSWORD },
    webhook: { auth: { type: 'basic', credentials: [{ username: 'event-mesh', password: HOOK_PASSWORD }] } },
    pollOverlapMs: 0,
    ...over,
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    return (e as WogateError).code;
  }
  return 'none';
}

async function failure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    const err = e as SourceError;
    expect(err.message).not.to.include(PASSWORD);
    expect(JSON.stringify(err.details ?? {})).not.to.include(PASSWORD);
    return err;
  }
  throw new Error('expected the call to fail');
}

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    specversion: '1.0', id: '0b5e2c1a-2f7e-4a4c-9d0e-6a1f3b2c9e77', source: '/default/sap.s4.beh/244572008',
    type: 'sap.s4.beh.maintenanceorder.v1.MaintenanceOrder.SetToInPreparation.v1', datacontenttype: 'application/json',
    time: '2025-03-04T13:12:04Z', data: { MaintenanceOrder: '4001873', MaintenanceOrderType: 'YA01' }, ...over,
  };
}

function hook(body: unknown, auth = basicAuthorization('event-mesh', HOOK_PASSWORD), extra: Record<string, string> = {}): WebhookRequest {
  return { headers: { authorization: auth, 'content-type': 'application/cloudevents+json', ...extra }, rawBody: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}

describe('sources/sap: SAP S/4HANA Plant Maintenance', () => {
  describe('mapping an API_MAINTENANCEORDER record', () => {
    it('maps the reference record: vendor and technicians from partners, equipment as asset, basic window, ISO revision', () => {
      const o = mapSapOrder('sap', rec());
      expect(o).to.deep.include({
        source: 'sap', id: '4001873', title: 'Boiler burner service by vendor', site: '1710', status: 'approved',
        sourceStatus: 'REL NMAT PRC / VNDR', vendorId: '17300001', technicianIds: ['42', '43'], assetIds: ['217100044'],
        type: 'corrective', revision: '2025-03-04T13:12:04.000Z',
      });
      expect(o.window).to.deep.equal({ start: new Date(1741161600000), end: new Date(1741197600000) });
      expect(o.approvals).to.deep.equal([{ by: 'planner7' }]);
    });

    const table: [string, string, string][] = [
      ['CRTD NMAT', '', 'awaiting_approval'],
      ['REL  NMAT PRC', '', 'approved'],
      ['REL  PCNF NMAT', '', 'in_progress'],
      ['REL  LKD  PCNF', '', 'on_hold'],
      ['REL  CNF  NMAT', '', 'completed'],
      ['TECO NMAT PRC', '', 'completed'],
      ['REL  TECO', '', 'completed'],
      ['TECO CLSD', '', 'closed'],
      ['TECO DLFL', '', 'cancelled'],
      ['CLSD DLT', '', 'cancelled'],
      ['crtd  dlfl', '', 'cancelled'],
    ];
    for (const [system, user, status] of table) {
      it(`reads system status "${system}" as ${status} by the documented precedence`, () => {
        expect(mapSapOrder('sap', rec({ SystemStatusText: system, UserStatusText: user })).status).to.equal(status);
      });
    }

    it('lets configured rules require a user status (REL without VNDR waits for approval)', () => {
      const statusRules = [{ system: ['REL'], user: ['VNDR'], status: 'approved' as const }, { system: ['REL'], status: 'awaiting_approval' as const }, ...DEFAULT_STATUS_RULES];
      expect(mapSapOrder('sap', rec(), { statusRules }).status).to.equal('approved');
      expect(mapSapOrder('sap', rec({ UserStatusText: 'INIT' }), { statusRules }).status).to.equal('awaiting_approval');
    });

    it('refuses a status no rule knows, naming the codes it saw and the ones it knows', () => {
      try {
        mapSapOrder('sap', rec({ SystemStatusText: 'XYZ1 NMAT', UserStatusText: '' }));
        expect.fail('should throw');
      } catch (e) {
        expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        expect((e as WogateError).message).to.include('XYZ1 NMAT').and.include('REL').and.include('CRTD');
      }
    });

    it('refuses a record without an order number or with one unfit for an OData key', () => {
      expect(codeOf(() => mapSapOrder('sap', rec({ MaintenanceOrder: undefined })))).to.equal('HOOK_MAPPING_FAILED');
      expect(codeOf(() => mapSapOrder('sap', rec({ MaintenanceOrder: "40')/x" })))).to.equal('HOOK_MAPPING_FAILED');
      expect(codeOf(() => mapSapOrder('sap', []))).to.equal('HOOK_MAPPING_FAILED');
    });

    it('maps what it can: no vendor, no technicians, no assets and no window give an order that policy will deny', () => {
      const o = mapSapOrder('sap', rec({ to_MaintenanceOrderPartner: { __deferred: { uri: 'x' } }, Equipment: '', MaintOrdBasicEndDateTime: null }));
      expect(o.vendorId).to.equal('');
      expect(o.technicianIds).to.deep.equal([]);
      expect(o.assetIds).to.deep.equal([]);
      // Half a window is no window: never 1970 → end.
      expect(o.window).to.deep.equal({ start: new Date(0), end: new Date(0) });
    });

    it('names no vendor when two are on the order, rather than picking one', () => {
      const partners = { results: [{ PartnerFunction: 'VN', MaintenanceOrderPartner: '1' }, { PartnerFunction: 'VN', MaintenanceOrderPartner: '2' }] };
      expect(mapSapOrder('sap', rec({ to_MaintenanceOrderPartner: partners })).vendorId).to.equal('');
    });

    it('takes partner functions, asset source, window fields and object list from configuration', () => {
      const o: SapMappingOptions = {
        vendorPartnerFunction: 'ZV', technicianPartnerFunctions: ['ZT'], window: 'scheduled', assetIdFrom: 'functionalLocation', includeObjectList: true, stripLeadingZeros: false,
      };
      const r = rec({
        MaintOrdSchedldBscStrtDateTime: '/Date(1741165200000+0000)/', MaintOrdSchedldBscEndDateTime: '/Date(1741168800000+0000)/',
        to_MaintenanceOrderPartner: { results: [{ PartnerFunction: 'ZV', MaintenanceOrderPartner: '0017300009' }, { PartnerFunction: 'ZT', MaintenanceOrderPartner: 'JDOE' }] },
        to_MaintOrderObjectListItem: { results: [{ Equipment: '1', FunctionalLocation: '1710-SPA-UTIL-BLR2' }, { Equipment: '2', FunctionalLocation: '' }] },
      });
      const m = mapSapOrder('sap', r, o);
      expect(m.vendorId).to.equal('0017300009');
      expect(m.technicianIds).to.deep.equal(['jdoe']);
      expect(m.assetIds).to.deep.equal(['1710-spa-util-blr1', '1710-spa-util-blr2']);
      expect(m.window.start.toISOString()).to.equal('2025-03-05T09:00:00.000Z');
      expect(mapSapOrder('sap', rec({ Equipment: '' }), { assetIdFrom: 'equipmentOrFunctionalLocation' }).assetIds).to.deep.equal(['1710-spa-util-blr1']);
    });

    it('counts approvals from the release, from user statuses, or not at all', () => {
      expect(mapSapOrder('sap', rec({ SystemStatusText: 'CRTD' })).approvals).to.deep.equal([]);
      const userStatus: SapMappingOptions = { approvals: { from: 'userStatus', userStatuses: ['APR1', 'APR2', 'APR1'] } };
      expect(mapSapOrder('sap', rec({ UserStatusText: 'APR1 APR2 VNDR' }), userStatus).approvals).to.deep.equal([{ by: 'user-status:apr1' }, { by: 'user-status:apr2' }]);
      expect(mapSapOrder('sap', rec(), { approvals: { from: 'none' } }).approvals).to.deep.equal([]);
    });

    it('maps the order type through typeMap and falls back to defaultType', () => {
      expect(mapSapOrder('sap', rec({ MaintenanceOrderType: 'YA02' })).type).to.equal('emergency');
      expect(mapSapOrder('sap', rec({ MaintenanceOrderType: 'ZZ99' })).type).to.equal('corrective');
      expect(mapSapOrder('sap', rec({ MaintPriority: '1' }), { typeField: 'MaintPriority', typeMap: { 1: 'emergency' } }).type).to.equal('emergency');
    });

    it('never throws anything but HOOK_MAPPING_FAILED for arbitrary JSON', () => {
      fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('MaintenanceOrder', 'SystemStatusText', 'UserStatusText', 'to_MaintenanceOrderPartner', 'LastChangeDateTime', 'MaintOrdBasicStartDateTime', 'Equipment'), fc.jsonValue())), (v) => {
        try {
          const o = mapSapOrder('sap', v);
          expect(o.id).to.be.a('string');
        } catch (e) {
          expect(e).to.be.instanceOf(WogateError);
          expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        }
      }), { numRuns: 500 });
    });

    it('maps equipment to an asset and skips deleted or inactive ones', () => {
      expect(mapSapEquipment({ Equipment: '000010000123', EquipmentName: 'Feed pump', TechnicalObjectType: 'PUMP', ABCIndicator: 'A', MaintenancePlant: '1710', FunctionalLocation: '', FunctionalLocationLabelName: '1710-SPA-UTIL' }))
        .to.deep.equal({ id: '10000123', name: 'Feed pump', class: 'PUMP', criticality: 'critical', site: '1710', zone: '1710-SPA-UTIL' });
      expect(mapSapEquipment({ Equipment: '7', ABCIndicator: 'Q' })).to.deep.equal({ id: '7' });
      expect(mapSapEquipment({ Equipment: '7', EquipmentIsMarkedForDeletion: true })).to.equal(undefined);
      expect(mapSapEquipment({ Equipment: '7', ABCIndicator: 'C' }, { criticalityMap: { C: 'low' } })?.criticality).to.equal('low');
    });

    it('orders keys the way SAP does (zero-padded internal form)', () => {
      expect(compareOrderKeys('999', '1000')).to.equal(-1);
      expect(compareOrderKeys('4000001', '4000001')).to.equal(0);
    });
  });

  describe('webhook verification (Event Mesh, CloudEvents over Basic or Bearer)', () => {
    const source = new SapSource(options());
    const now = new Date('2025-03-04T13:13:00Z');

    it('accepts an authenticated, fresh CloudEvent and returns its id and time', () => {
      expect(source.verify(hook(event()), now)).to.deep.equal({ webhookId: '0b5e2c1a-2f7e-4a4c-9d0e-6a1f3b2c9e77', eventTime: new Date('2025-03-04T13:12:04Z') });
    });

    it('reads id and time from ce-* headers in binary mode', () => {
      const d = source.verify(hook({ MaintenanceOrder: '4001873' }, undefined, { 'ce-id': 'A-1', 'ce-time': '2025-03-04T14:12:30+01:00', 'ce-specversion': '1.0' }), now);
      expect(d).to.deep.equal({ webhookId: 'A-1', eventTime: new Date('2025-03-04T13:12:30Z') });
    });

    it('refuses a missing header, another scheme, a wrong password and a second credential of nobody', () => {
      expect(codeOf(() => source.verify({ headers: {}, rawBody: Buffer.from(JSON.stringify(event())) }, now))).to.equal('HOOK_HEADER_MISSING');
      expect(codeOf(() => source.verify(hook(event(), `Bearer ${HOOK_PASSWORD}`), now))).to.equal('HOOK_SIGNATURE_INVALID');
      expect(codeOf(() => source.verify(hook(event(), basicAuthorization('event-mesh', 'wrong')), now))).to.equal('HOOK_SIGNATURE_INVALID');
      expect(codeOf(() => source.verify(hook(event(), basicAuthorization('other', HOOK_PASSWORD)), now))).to.equal('HOOK_SIGNATURE_INVALID');
    });

    it('accepts any of several credentials (rotation) and a bearer token when so configured', () => {
      const rotating = new SapSource(options({ webhook: { auth: { type: 'basic', credentials: [{ username: 'old', password: 'old-pass-1234' }, { username: 'event-mesh', password: HOOK_PASSWORD }] } } }));
      expect(rotating.verify(hook(event()), now).webhookId).to.be.a('string');
      const bearer = new SapSource(options({ webhook: { auth: { type: 'bearer', tokens: ['tok-0123456789abcdef'] } } }));
      expect(bearer.verify(hook(event(), 'Bearer tok-0123456789abcdef'), now).webhookId).to.be.a('string');
      expect(codeOf(() => bearer.verify(hook(event(), 'Bearer tok-0123456789abcdeX'), now))).to.equal('HOOK_SIGNATURE_INVALID');
    });

    it('refuses events older than the tolerance and ahead of the clock by more than the skew', () => {
      expect(codeOf(() => source.verify(hook(event({ time: '2025-03-04T13:07:59Z' })), now))).to.equal('HOOK_SIGNATURE_STALE');
      expect(codeOf(() => source.verify(hook(event({ time: '2025-03-04T13:14:01Z' })), now))).to.equal('HOOK_SIGNATURE_FUTURE');
      expect(source.verify(hook(event({ time: '2025-03-04T13:13:59Z' })), now).webhookId).to.be.a('string');
    });

    it('refuses an event without id or time, or with an unreadable one', () => {
      expect(codeOf(() => source.verify(hook(event({ id: undefined })), now))).to.equal('HOOK_HEADER_MISSING');
      expect(codeOf(() => source.verify(hook(event({ time: undefined })), now))).to.equal('HOOK_HEADER_MISSING');
      expect(codeOf(() => source.verify(hook(event({ time: '2025-03-04 13:12' })), now))).to.equal('HOOK_BODY_INVALID');
      expect(codeOf(() => source.verify(hook(event({ id: 'has space' })), now))).to.equal('HOOK_BODY_INVALID');
      expect(codeOf(() => source.verify(hook('not json'), now))).to.equal('HOOK_BODY_INVALID');
    });

    it('property: what Event Mesh sends verifies, within tolerance, for any id and time', () => {
      fc.assert(fc.property(fc.stringMatching(/^[\x21-\x7e]{1,64}$/), fc.integer({ min: -300, max: 60 }), (id, offset) => {
        const t = new Date(now.getTime() + offset * 1000);
        const d = source.verify(hook(event({ id, time: t.toISOString() })), now);
        expect(d).to.deep.equal({ webhookId: id, eventTime: t });
      }));
    });

    it('property: any single bit flipped in the credential fails', () => {
      const header = basicAuthorization('event-mesh', HOOK_PASSWORD);
      const token = Buffer.from(header.slice('Basic '.length), 'latin1');
      fc.assert(fc.property(fc.integer({ min: 0, max: token.length * 8 - 1 }), (bit) => {
        const flipped = Buffer.from(token);
        flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
        const code = codeOf(() => source.verify(hook(event(), `Basic ${flipped.toString('latin1')}`), now));
        expect(code).to.match(/^HOOK_/);
      }));
    });

    it('property: garbage never throws anything but a HOOK_* WogateError', () => {
      const headerValue = fc.oneof(fc.string(), fc.constant(basicAuthorization('event-mesh', HOOK_PASSWORD)), fc.constant(undefined));
      fc.assert(fc.property(headerValue, fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.constant(JSON.stringify(event()))), headerValue, (auth, body, ceId) => {
        const headers: Record<string, string | undefined> = { authorization: auth, 'ce-id': ceId, 'ce-time': ceId };
        try {
          source.verify({ headers, rawBody: Buffer.from(body) }, now);
        } catch (e) {
          expect(e).to.be.instanceOf(WogateError);
          expect((e as WogateError).code).to.match(/^HOOK_/);
          expect((e as WogateError).message).not.to.include(HOOK_PASSWORD);
        }
      }), { numRuns: 500 });
    });
  });

  describe('parseEvent', () => {
    const source = new SapSource(options());
    const delivery = { webhookId: 'x', eventTime: new Date() };

    it('reads the order number and the event name from a structured event; a thin event carries no order', () => {
      expect(source.parseEvent(event({ data: { MaintenanceOrder: '000004001873', MaintenanceOrderType: 'YA01' } }), delivery)).to.deep.equal({ orderId: '4001873', type: 'SetToInPreparation' });
    });

    it('reads the body as the data in binary mode', () => {
      expect(source.parseEvent({ MaintenanceOrder: '4001873', MaintenanceOrderType: 'YA01' }, delivery)).to.deep.equal({ orderId: '4001873' });
    });

    it('refuses events of other business objects and events without an order number', () => {
      expect(codeOf(() => source.parseEvent(event({ type: 'sap.s4.beh.salesorder.v1.SalesOrder.Created.v1' }), delivery))).to.equal('HOOK_MAPPING_FAILED');
      expect(codeOf(() => source.parseEvent(event({ data: { MaintenanceOrderType: 'YA01' } }), delivery))).to.equal('HOOK_MAPPING_FAILED');
      expect(codeOf(() => source.parseEvent(event({ data: { MaintenanceOrder: "1')" } }), delivery))).to.equal('HOOK_MAPPING_FAILED');
    });

    it('never throws anything but HOOK_MAPPING_FAILED for arbitrary JSON', () => {
      fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.record({ specversion: fc.jsonValue(), type: fc.jsonValue(), data: fc.jsonValue() }, { requiredKeys: [] })), (v) => {
        try {
          expect(source.parseEvent(v, delivery).orderId).to.match(/^[A-Za-z0-9_-]{1,12}$/);
        } catch (e) {
          expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        }
      }), { numRuns: 500 });
    });
  });

  describe('OData API', () => {
    let source: SapSource;
    before(() => nock.disableNetConnect());
    after(() => nock.enableNetConnect());
    afterEach(async () => {
      nock.cleanAll();
      await source?.close();
    });

    it('re-reads one order with its partners expanded, sending sap-client and the credentials', async () => {
      let query: Record<string, string> = {};
      nock(BASE, { reqheaders: { authorization: basicAuthorization('WOGATE', PASSWORD), accept: 'application/json' } })
        .get(`${SVC}/MaintenanceOrder('4001873')`).query((q) => ((query = q as Record<string, string>), true))
        .reply(200, { d: rec() });
      source = new SapSource(options({ sapClient: '100' }));
      const o = await source.api.fetchOrder('4001873', ctx);
      expect(o?.vendorId).to.equal('17300001');
      expect(query).to.deep.equal({ $expand: 'to_MaintenanceOrderPartner', 'sap-client': '100' });
    });

    it('answers undefined when SAP says the order does not exist', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder('4001873')`).query(true)
        .reply(404, { error: { code: '/IWBEP/CM_MGW_RT/020', message: { lang: 'en', value: 'Resource not found' } } });
      source = new SapSource(options());
      expect(await source.api.fetchOrder('4001873', ctx)).to.equal(undefined);
    });

    it('sends the APIKey header when configured (API Business Hub sandbox)', async () => {
      nock(BASE, { reqheaders: { apikey: 'hub-key-1' } }).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(200, { d: rec({ MaintenanceOrder: '1' }) });
      source = new SapSource(options({ apiKey: 'hub-key-1' }));
      expect((await source.api.fetchOrder('1', ctx))?.id).to.equal('1');
    });

    it('polls by LastChangeDateTime with ge, pages by key, follows d.__next and returns the newest change as cursor', async () => {
      const seen: Record<string, string>[] = [];
      const page = (ids: string[], secs: number[]) => ({ d: { results: ids.map((id, i) => rec({ MaintenanceOrder: id, LastChangeDateTime: `/Date(${(1741093900 + (secs[i] as number)) * 1000}+0000)/` })) } });
      const scope = nock(BASE)
        .get(`${SVC}/MaintenanceOrder`).query((q) => (seen.push(q as Record<string, string>), !('$skiptoken' in q) && !String(q.$filter).includes(' or ')))
        .reply(200, { d: { ...page(['1', '2'], [0, 1]).d, __next: `${BASE}${SVC}/MaintenanceOrder?$skiptoken=2&$top=3` } })
        .get(`${SVC}/MaintenanceOrder`).query((q) => '$skiptoken' in q)
        .reply(200, page(['3'], [1]))
        .get(`${SVC}/MaintenanceOrder`).query((q) => (seen.push(q as Record<string, string>), String(q.$filter).includes(' or ')))
        .reply(200, page(['4'], [5]));
      source = new SapSource(options({ pageSize: 3 }));
      const res = await source.api.poll('2025-03-04T13:11:40.000Z', new Date(0), ctx);
      expect(res.orders.map((o) => o.id)).to.deep.equal(['1', '2', '3', '4']);
      expect(res.cursor).to.equal('2025-03-04T13:11:45.000Z');
      expect(seen[0]?.$filter).to.equal("LastChangeDateTime ge datetimeoffset'2025-03-04T13:11:40Z'");
      expect(seen[0]?.$orderby).to.equal('LastChangeDateTime asc,MaintenanceOrder asc');
      expect(seen[1]?.$filter).to.equal("LastChangeDateTime ge datetimeoffset'2025-03-04T13:11:40Z' and (LastChangeDateTime gt datetimeoffset'2025-03-04T13:11:41Z' or (LastChangeDateTime eq datetimeoffset'2025-03-04T13:11:41Z' and MaintenanceOrder gt '3'))");
      expect(scope.isDone()).to.equal(true);
    });

    it('starts from `since` without a cursor, reads the overlap behind it, and keeps the cursor when nothing changed', async () => {
      let filter = '';
      nock(BASE).get(`${SVC}/MaintenanceOrder`).query((q) => ((filter = String(q.$filter)), true)).reply(200, { d: { results: [] } });
      source = new SapSource(options({ pollOverlapMs: 60_000, plants: ['1710', '1010'] }));
      const res = await source.api.poll(undefined, new Date('2025-03-04T00:00:00Z'), ctx);
      expect(filter).to.equal("LastChangeDateTime ge datetimeoffset'2025-03-03T23:59:00Z' and (MaintenancePlant eq '1710' or MaintenancePlant eq '1010')");
      expect(res).to.deep.equal({ orders: [], cursor: '2025-03-04T00:00:00.000Z' });
    });

    it('fails the whole poll when a later page fails, so the cursor is not moved past what was read', async () => {
      nock(BASE)
        .get(`${SVC}/MaintenanceOrder`).query((q) => !String(q.$filter).includes(' or ')).reply(200, { d: { results: [rec({ MaintenanceOrder: '1' }), rec({ MaintenanceOrder: '2' })] } })
        .get(`${SVC}/MaintenanceOrder`).query((q) => String(q.$filter).includes(' or ')).reply(503, 'busy', { 'Retry-After': '5' });
      source = new SapSource(options({ pageSize: 2 }));
      const e = await failure(source.api.poll('2025-03-04T13:00:00Z', new Date(0), ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.retryAfterMs).to.equal(5000);
    });

    it('takes only the query of a d.__next link, so credentials never follow it to another host', async () => {
      nock(BASE)
        .get(`${SVC}/MaintenanceOrder`).query((q) => !('$skiptoken' in q)).reply(200, { d: { results: [rec({ MaintenanceOrder: '1' })], __next: 'https://internal-host:44300/other/path?$skiptoken=1' } })
        .get(`${SVC}/MaintenanceOrder`).query((q) => q.$skiptoken === '1' && q['sap-client'] === '100').reply(200, { d: { results: [rec({ MaintenanceOrder: '2' })] } });
      source = new SapSource(options({ sapClient: '100' }));
      const res = await source.api.poll(undefined, new Date(0), ctx);
      expect(res.orders.map((o) => o.id)).to.deep.equal(['1', '2']);
    });

    it('reports a d.__next that is not a link', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder`).query(true).reply(200, { d: { results: [rec()], __next: 42 } });
      source = new SapSource(options());
      const e = await failure(source.api.poll(undefined, new Date(0), ctx));
      expect(e.details?.code).to.equal('SOURCE_RESPONSE_INVALID');
    });

    it('lists open orders by window end and judges the status itself', async () => {
      let filter = '';
      nock(BASE).get(`${SVC}/MaintenanceOrder`).query((q) => ((filter = String(q.$filter)), true)).reply(200, {
        d: { results: [rec({ MaintenanceOrder: '1' }), rec({ MaintenanceOrder: '2', SystemStatusText: 'TECO' }), rec({ MaintenanceOrder: '3', SystemStatusText: 'CRTD' })] },
      });
      source = new SapSource(options({ openLookbackMs: 86_400_000 }));
      const open = await source.api.listOpen(ctx);
      expect(open.map((o) => o.id)).to.deep.equal(['1', '3']);
      expect(filter).to.equal("MaintOrdBasicEndDateTime ge datetimeoffset'2025-03-03T13:15:00Z'");
    });

    it('treats 401 and 403 as not retryable and names the call without its query', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(401, '<html>Logon failed</html>');
      source = new SapSource(options({ sapClient: '100' }));
      const e = await failure(source.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include(`GET ${SVC}/MaintenanceOrder('1') answered 401`).and.not.include('sap-client');
    });

    it('treats 429 with Retry-After and 500 as retryable, and shows the Gateway error text', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(429, 'slow down', { 'Retry-After': '7' });
      source = new SapSource(options());
      const e = await failure(source.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.retryAfterMs).to.equal(7000);
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(500, { error: { code: 'SY/530', message: { lang: 'en', value: 'Runtime error' } } });
      const e2 = await failure(source.api.fetchOrder('1', ctx));
      expect(e2.retryable).to.equal(true);
      expect(e2.message).to.include('SY/530: Runtime error');
    });

    it('reports malformed JSON and an HTML page as SOURCE_RESPONSE_INVALID', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(200, '{"d": {', { 'content-type': 'application/json' });
      source = new SapSource(options());
      const e = await failure(source.api.fetchOrder('1', ctx));
      expect(e.details?.code).to.equal('SOURCE_RESPONSE_INVALID');
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(200, '<html><body>SAP NetWeaver logon</body></html>', { 'content-type': 'text/html' });
      const e2 = await failure(source.api.fetchOrder('1', ctx));
      expect(e2.details?.code).to.equal('SOURCE_RESPONSE_INVALID');
      expect(e2.message).to.include('text/html');
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(200, { d: rec({ SystemStatusText: 'ZZZZ' }) });
      const e3 = await failure(source.api.fetchOrder('1', ctx));
      expect(e3.details?.code).to.equal('SOURCE_RESPONSE_INVALID');
      expect(e3.retryable).to.equal(false);
    });

    it('treats a timeout and a network error as retryable', async () => {
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).delay(2000).reply(200, { d: rec() });
      source = new SapSource(options({ timeoutMs: 100 }));
      const e = await failure(source.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('no answer within 100 ms');
      nock(BASE).get(`${SVC}/MaintenanceOrder('1')`).query(true).replyWithError(Object.assign(new Error(`connect ECONNREFUSED ${BASE}?sap-client=100`), { code: 'ECONNREFUSED' }));
      const e2 = await failure(source.api.fetchOrder('1', ctx));
      expect(e2.retryable).to.equal(true);
      expect(e2.message).to.include('ECONNREFUSED').and.not.include('sap-client');
    });

    it('refuses an order id that could not be put in a key literal, before calling', async () => {
      source = new SapSource(options());
      const e = await failure(source.api.fetchOrder("1')/../x", ctx));
      expect(e.retryable).to.equal(false);
    });

    it('uses OAuth client credentials: one token while it lives, a new one after expiry or a 401', async () => {
      const tokenUrl = 'https://auth.test/oauth/token';
      const bodies: string[] = [];
      nock('https://auth.test').post('/oauth/token', (b) => (bodies.push(new URLSearchParams(b as string).toString()), true)).times(3)
        .reply(() => [200, { access_token: `tok-${bodies.length}`, token_type: 'bearer', expires_in: 3600 }]);
      nock(BASE, { reqheaders: { authorization: 'Bearer tok-1' } }).get(`${SVC}/MaintenanceOrder('1')`).query(true).times(2).reply(200, { d: rec({ MaintenanceOrder: '1' }) });
      nock(BASE, { reqheaders: { authorization: 'Bearer tok-2' } }).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(401, '');
      nock(BASE, { reqheaders: { authorization: 'Bearer tok-3' } }).get(`${SVC}/MaintenanceOrder('1')`).query(true).reply(200, { d: rec({ MaintenanceOrder: '1' }) });
      source = new SapSource(options({ auth: { type: 'oauth2', tokenUrl, clientId: 'sb-client!b1|x', clientSecret: 'CANARY-pw-7f3a-never-print' } }));
      await source.api.fetchOrder('1', ctx);
      await source.api.fetchOrder('1', { ...ctx, now: new Date(ctx.now.getTime() + 60_000) });
      expect(bodies).to.have.length(1);
      expect(bodies[0]).to.include('grant_type=client_credentials').and.include('client_id=sb-client%21b1%7Cx');
      // After expiry: a new token, refused once (revoked early), then another.
      await source.api.fetchOrder('1', { ...ctx, now: new Date(ctx.now.getTime() + 3_600_000) });
      expect(bodies).to.have.length(3);
    });

    it('does not leak the client secret when the token endpoint refuses', async () => {
      nock('https://auth.test').post('/oauth/token').reply(401, { error: 'invalid_client' });
      source = new SapSource(options({ auth: { type: 'oauth2', tokenUrl: 'https://auth.test/oauth/token', clientId: 'c', clientSecret: PASSWORD } }));
      const e = await failure(source.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('POST /oauth/token answered 401');
    });

    it('writes a note: fetches the CSRF token with its cookies, POSTs the first long text', async () => {
      let posted: unknown;
      nock(BASE)
        .get(`${SVC}/MaintenanceOrder('4001873')/to_MaintenanceOrderLongText`).query(true).reply(200, { d: { results: [] } })
        .get(`${SVC}/`).query(true).matchHeader('x-csrf-token', 'fetch')
        .reply(200, { d: { EntitySets: [] } }, { 'x-csrf-token': 'tok123==', 'set-cookie': ['SAP_SESSIONID_S4H_100=abc; path=/; HttpOnly', 'sap-usercontext=sap-client=100; path=/'] })
        .post(`${SVC}/MaintenanceOrder('4001873')/to_MaintenanceOrderLongText`, (b) => ((posted = b), true)).query(true)
        .matchHeader('x-csrf-token', 'tok123==').matchHeader('cookie', 'SAP_SESSIONID_S4H_100=abc; sap-usercontext=sap-client=100')
        .reply(201, { d: {} });
      source = new SapSource(options());
      await source.api.writeBack('4001873', 'wogate: access granted\u0007 to 42', ctx);
      expect(posted).to.deep.equal({ TextObjectType: 'KOPF', Language: 'EN', MaintenanceOrderLongText: 'wogate: access granted  to 42' });
    });

    it('appends to an existing long text with PATCH and If-Match, and refetches the CSRF token once on 403 Required', async () => {
      let patched: unknown;
      const etag = `W/"datetimeoffset'2025-03-04T13%3A12%3A04Z'"`;
      nock(BASE)
        .get(`${SVC}/MaintenanceOrder('1')/to_MaintenanceOrderLongText`).query(true)
        .reply(200, { d: { results: [{ __metadata: { etag }, MaintenanceOrder: '1', TextObjectType: 'KOPF', Language: 'EN', MaintenanceOrderLongText: 'old line' }] } })
        .get(`${SVC}/`).query(true).reply(200, '', { 'x-csrf-token': 'stale' })
        .patch(`${SVC}/MaintenanceOrderLongText(MaintenanceOrder='1',TextObjectType='KOPF',Language='EN')`).query(true).matchHeader('x-csrf-token', 'stale')
        .reply(403, 'CSRF token validation failed', { 'x-csrf-token': 'Required' })
        .get(`${SVC}/`).query(true).reply(200, '', { 'x-csrf-token': 'fresh' })
        .patch(`${SVC}/MaintenanceOrderLongText(MaintenanceOrder='1',TextObjectType='KOPF',Language='EN')`, (b) => ((patched = b), true)).query(true)
        .matchHeader('x-csrf-token', 'fresh').matchHeader('if-match', etag)
        .reply(204);
      source = new SapSource(options());
      await source.api.writeBack('1', 'new line', ctx);
      expect(patched).to.deep.equal({ MaintenanceOrderLongText: 'old line\nnew line' });
    });

    it('reports a concurrent edit (412) as retryable and a missing order as not', async () => {
      nock(BASE)
        .get(`${SVC}/MaintenanceOrder('1')/to_MaintenanceOrderLongText`).query(true)
        .reply(200, { d: { results: [{ MaintenanceOrder: '1', TextObjectType: 'KOPF', Language: 'EN', MaintenanceOrderLongText: 'x' }] } })
        .get(`${SVC}/`).query(true).reply(200, '', { 'x-csrf-token': 't' })
        .patch(/MaintenanceOrderLongText/).query(true).matchHeader('if-match', '*').reply(412, { error: { code: 'X', message: { value: 'changed' } } })
        .get(`${SVC}/MaintenanceOrder('2')/to_MaintenanceOrderLongText`).query(true).reply(404, '');
      source = new SapSource(options());
      const e = await failure(source.api.writeBack('1', 'n', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.status).to.equal(412);
      const e2 = await failure(source.api.writeBack('2', 'n', ctx));
      expect(e2.retryable).to.equal(false);
    });

    it('lists equipment with $skip paging, keeps the longest-valid usage period and drops deleted equipment', async () => {
      const eq = (id: string, over: Record<string, unknown> = {}) => ({ Equipment: id, EquipmentName: `Equipment ${id}`, ValidityEndDate: '/Date(253402214400000)/', TechnicalObjectType: 'PLC', ABCIndicator: 'B', MaintenancePlant: '1710', ...over });
      nock(BASE)
        .get('/sap/opu/odata/sap/API_EQUIPMENT/Equipment').query((q) => q.$skip === '0' && q.$top === '2')
        .reply(200, { d: { results: [eq('10', { ValidityEndDate: '/Date(1700000000000)/', TechnicalObjectType: 'OLD' }), eq('10')] } })
        .get('/sap/opu/odata/sap/API_EQUIPMENT/Equipment').query((q) => q.$skip === '2')
        .reply(200, { d: { results: [eq('11', { EquipmentIsMarkedForDeletion: true })] } });
      source = new SapSource(options({ pageSize: 2 }));
      const assets = await source.api.listAssets(ctx);
      expect(assets).to.deep.equal([{ id: '10', name: 'Equipment 10', class: 'PLC', criticality: 'high', site: '1710' }]);
    });
  });

  describe('configuration', () => {
    const example = `
baseUrl: https://my-s4.example.com
sapClient: "100"
auth: { type: basic, username: WOGATE_COMM, password: "env:SAP_PASSWORD" }
timeout: 15s
pageSize: 100
plants: ["1710"]
pollOverlap: 60s
openLookback: 30d
webhook:
  auth: { type: basic, credentials: [{ username: event-mesh, password: "env:SAP_EM_PASSWORD" }] }
  tolerance: 5m
  clockSkew: 60s
mapping:
  statusRules:
    - { system: [REL], user: [VNDR], status: approved }
    - { system: [REL], status: awaiting_approval }
  vendorPartnerFunction: VN
  technicianPartnerFunctions: [VW]
  approvals: { from: release }
  typeMap: { YA01: corrective }
assets: { criticalityMap: { A: critical } }
writeBack: { textObjectType: KOPF, language: EN }
`;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile({
      definitions: { duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' }, secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' } },
      ...SAP_SOURCE_SCHEMA,
    });

    it('accepts the documented example and refuses inline secrets and rules without a condition', () => {
      expect(validate(parseYaml(example)), JSON.stringify(validate.errors)).to.equal(true);
      const inline = parseYaml(example.replace('"env:SAP_PASSWORD"', 'hunter2')) as unknown;
      expect(validate(inline)).to.equal(false);
      const noCond = parseYaml(example.replace('- { system: [REL], status: awaiting_approval }', '- { status: approved }')) as unknown;
      expect(validate(noCond)).to.equal(false);
    });

    it('turns the block into adapter options with durations as numbers', () => {
      const block = parseYaml(example.replaceAll('"env:SAP_PASSWORD"', 'pw').replaceAll('"env:SAP_EM_PASSWORD"', 'pw2')) as Record<string, unknown>;
      const o = sapSourceOptions('s4', block);
      expect(o).to.deep.include({ id: 's4', timeoutMs: 15_000, pollOverlapMs: 60_000, openLookbackMs: 30 * 86_400_000 });
      expect(o.webhook).to.deep.include({ toleranceSeconds: 300, clockSkewSeconds: 60 });
      expect(new SapSource(o).kind).to.equal('sap');
      expect(() => sapSourceOptions('s4', { ...block, webhook: { ...(block.webhook as object), tolerance: '2h' } })).to.throw(WogateError, /tolerance/);
    });

    it('refuses configuration that would send credentials astray or break key literals', () => {
      expect(() => new SapSource(options({ baseUrl: 'ftp://x' }))).to.throw(WogateError);
      expect(() => new SapSource(options({ baseUrl: `${BASE}?sap-client=100` }))).to.throw(WogateError);
      expect(() => new SapSource(options({ plants: ["17'10"] }))).to.throw(WogateError);
      try {
        new SapSource(options({ apiKey: 'a\r\nX-Admin: 1' }));
        expect.fail('should throw');
      } catch (e) {
        expect((e as WogateError).message).to.include('apiKey').and.not.include('X-Admin');
      }
      expect(() => new SapSource(options({ webhook: { auth: { type: 'bearer', tokens: ['short'] } } }))).to.throw(WogateError);
    });
  });
});
