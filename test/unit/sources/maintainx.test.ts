import { createHmac } from 'node:crypto';
import Ajv from 'ajv';
import { expect } from 'chai';
import fc from 'fast-check';
import nock from 'nock';
import { WogateError } from '../../../src/domain/errors.js';
import { silentLogger } from '../../../src/log.js';
import { buildMapping, mapMaintainXOrder } from '../../../src/sources/maintainx-mapping.js';
import { signMaintainX } from '../../../src/sources/maintainx-signature.js';
import { MaintainXSource, maintainxSourceSchema, type MaintainXSourceOptions } from '../../../src/sources/maintainx.js';
import { SourceError, type CallContext, type Delivery, type WebhookRequest } from '../../../src/sources/source.js';

// The self-generated fixture in the shared API reference (section 3), not an official vector.
const FIXTURE_SECRET = 'mx_test_secret_123';
const FIXTURE_BODY = '{"type":"WORK_ORDER_CHANGE","orgId":48213,"workOrderId":9917342,"occurredAt":"2025-03-04T14:05:09.120Z","newWorkOrder":{"title":"Replace VFD on AHU-3","status":"IN_PROGRESS","priority":"HIGH","assetId":55120,"locationId":812,"dueDate":"2025-03-06T22:00:00.000Z"}}';
const FIXTURE_HEADER = 't=1741097109,v1=051497c9c90b2a31204dc5b1beffc8e0abe1b643697d2949d2fbb052fbcc1f26';
const FIXTURE_NOW = new Date(1741097109_000 + 4_000);

const ORIGIN = 'http://mx.test';
const BASE = `${ORIGIN}/v1`;
const API_KEY = 'mxkey-CANARY-1f0c9d-never-print';
const HOOK_URL = 'https://wogate.example.com/v1/hooks/mx';
const ctx: CallContext = { now: new Date('2026-11-22T10:00:00Z'), log: silentLogger };

function source(over: Partial<MaintainXSourceOptions> = {}): MaintainXSource {
  return new MaintainXSource({ id: 'mx', baseUrl: BASE, apiKey: API_KEY, timeoutMs: 1000, webhook: { secrets: [FIXTURE_SECRET] }, ...over });
}

function request(header: string | undefined, body = FIXTURE_BODY, extra: Record<string, string> = {}, url?: string): WebhookRequest {
  return {
    headers: { ...(header === undefined ? {} : { 'x-maintainx-webhook-body-signature': header }), ...extra },
    rawBody: Buffer.from(body),
    ...(url === undefined ? {} : { url }),
  };
}

function failure(fn: () => unknown): WogateError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    return e as WogateError;
  }
  expect.fail('expected a WogateError');
}

async function rejection(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    const err = e as SourceError;
    expect(err.message + JSON.stringify(err.details ?? {})).not.to.include(API_KEY);
    return err;
  }
  expect.fail('expected a SourceError');
}

function fullOrder(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 4711, sequentialId: 12, organizationId: 48213, title: ' Calibrate\nanalyser ', status: 'IN_PROGRESS', priority: 'HIGH', type: 'REACTIVE',
    assetId: 55120, locationId: 812, startDate: '2026-11-22T09:00:00.000Z', dueDate: '2026-11-22T13:30:00.000-05:00',
    vendorIds: [301], assigneeIds: [9001, 9002, 9001], teamIds: [5], categories: ['Electrical'], extraFields: {},
    createdAt: '2026-11-20T08:00:00.000Z', updatedAt: '2026-11-21T16:00:00.123Z', ...over,
  };
}

const delivery: Delivery = { webhookId: 'x', eventTime: new Date('2026-11-22T09:59:00Z') };
const mapping = buildMapping({});

describe('sources/maintainx', () => {
  describe('verify', () => {
    it('accepts the reference fixture and derives a stable id from work order, t and body', () => {
      const d = source().verify(request(FIXTURE_HEADER), FIXTURE_NOW);
      expect(d.eventTime.toISOString()).to.equal('2025-03-04T14:05:09.000Z');
      expect(d.webhookId).to.match(/^mx:9917342:1741097109:[0-9a-f]{32}$/);
      expect(source().verify(request(FIXTURE_HEADER), FIXTURE_NOW).webhookId).to.equal(d.webhookId);
    });

    it('gives another id to another body signed with the same t', () => {
      const other = FIXTURE_BODY.replace('IN_PROGRESS', 'DONE');
      const d = source().verify(request(signMaintainX(FIXTURE_SECRET, 1741097109, other), other), FIXTURE_NOW);
      expect(d.webhookId).to.not.equal(source().verify(request(FIXTURE_HEADER), FIXTURE_NOW).webhookId);
    });

    it('reads t as milliseconds from 1e12 on', () => {
      const t = 1741097109_123;
      const d = source().verify(request(signMaintainX(FIXTURE_SECRET, t, FIXTURE_BODY)), FIXTURE_NOW);
      expect(d.eventTime.getTime()).to.equal(t);
    });

    it('refuses timestamps more than 300 s old or ahead and accepts the boundary', () => {
      const at = (skew: number): Date => new Date(1741097109_000 + skew * 1000);
      expect(failure(() => source().verify(request(FIXTURE_HEADER), at(301))).code).to.equal('HOOK_SIGNATURE_STALE');
      expect(failure(() => source().verify(request(FIXTURE_HEADER), at(-301))).code).to.equal('HOOK_SIGNATURE_FUTURE');
      source().verify(request(FIXTURE_HEADER), at(300));
      source().verify(request(FIXTURE_HEADER), at(-300));
    });

    for (const [name, header, code] of [
      ['missing', undefined, 'HOOK_HEADER_MISSING'],
      ['empty', '  ', 'HOOK_HEADER_MISSING'],
      ['without t', 'v1=051497c9c90b2a31204dc5b1beffc8e0abe1b643697d2949d2fbb052fbcc1f26', 'HOOK_SIGNATURE_INVALID'],
      ['without v1', 't=1741097109', 'HOOK_SIGNATURE_INVALID'],
      ['with a short v1', 't=1741097109,v1=051497c9', 'HOOK_SIGNATURE_INVALID'],
      ['with two t', `${FIXTURE_HEADER},t=1741097110`, 'HOOK_SIGNATURE_INVALID'],
      ['with a non-numeric t', FIXTURE_HEADER.replace('t=1741097109', 't=17e8'), 'HOOK_SIGNATURE_INVALID'],
      ['with a wrong digest', FIXTURE_HEADER.replace('051497c9', '151497c9'), 'HOOK_SIGNATURE_INVALID'],
    ] as const) {
      it(`refuses a body signature header ${name} (${code}) without echoing signature or secret`, () => {
        const e = failure(() => source().verify(request(header), FIXTURE_NOW));
        expect(e.code).to.equal(code);
        const text = e.message + JSON.stringify(e.details ?? {});
        expect(text).not.to.include('051497c9c90b2a31').and.not.to.include(FIXTURE_SECRET);
      });
    }

    it('ignores other schemes and tries every v1 element', () => {
      const h = `t=1741097109,v0=abc,v1=${'0'.repeat(64)},v1=051497c9c90b2a31204dc5b1beffc8e0abe1b643697d2949d2fbb052fbcc1f26`;
      source().verify(request(h), FIXTURE_NOW);
    });

    it('accepts any of several secrets (rotation, one per subscription) and refuses others', () => {
      source({ webhook: { secrets: ['new-secret', FIXTURE_SECRET] } }).verify(request(FIXTURE_HEADER), FIXTURE_NOW);
      expect(failure(() => source({ webhook: { secrets: ['new-secret'] } }).verify(request(FIXTURE_HEADER), FIXTURE_NOW)).code).to.equal('HOOK_SIGNATURE_INVALID');
    });

    it('joins a header sent twice so both copies are considered', () => {
      const req: WebhookRequest = { headers: { 'x-maintainx-webhook-body-signature': ['t=1741097109', 'v1=051497c9c90b2a31204dc5b1beffc8e0abe1b643697d2949d2fbb052fbcc1f26'] }, rawBody: Buffer.from(FIXTURE_BODY) };
      source().verify(req, FIXTURE_NOW);
    });

    describe('URI signature', () => {
      const withUri = (): MaintainXSource => source({ webhook: { secrets: [FIXTURE_SECRET], publicUrl: HOOK_URL } });
      const uriSig = (uri: string): string => signMaintainX(FIXTURE_SECRET, 1741097109, uri);

      it('is required once a public URL is configured', () => {
        expect(failure(() => withUri().verify(request(FIXTURE_HEADER), FIXTURE_NOW)).code).to.equal('HOOK_HEADER_MISSING');
      });

      it('accepts a signature over the public URL, or over the received path on the public origin', () => {
        withUri().verify(request(FIXTURE_HEADER, FIXTURE_BODY, { 'x-maintainx-webhook-uri-signature': uriSig(HOOK_URL) }), FIXTURE_NOW);
        const received = '/v1/hooks/mx?tenant=7';
        withUri().verify(request(FIXTURE_HEADER, FIXTURE_BODY, { 'x-maintainx-webhook-uri-signature': uriSig(`https://wogate.example.com${received}`) }, received), FIXTURE_NOW);
      });

      it('refuses a signature over another URL', () => {
        const h = { 'x-maintainx-webhook-uri-signature': uriSig('https://evil.example.com/v1/hooks/mx') };
        expect(failure(() => withUri().verify(request(FIXTURE_HEADER, FIXTURE_BODY, h, '/v1/hooks/mx'), FIXTURE_NOW)).code).to.equal('HOOK_SIGNATURE_INVALID');
      });
    });

    describe('properties', () => {
      const now = new Date(1_800_000_000_000);
      const t = 1_800_000_000;

      it('round-trips any body and secret, and any single bit flip in body or digest fails', () => {
        fc.assert(fc.property(
          fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== ''), fc.nat(), fc.boolean(),
          (bytes, secret, bit, inBody) => {
            const body = Buffer.from(bytes);
            const s = source({ webhook: { secrets: [secret] } });
            const header = signMaintainX(secret, t, body);
            s.verify({ headers: { 'x-maintainx-webhook-body-signature': header }, rawBody: body }, now);
            if (inBody && body.length > 0) {
              const flipped = Buffer.from(body);
              flipped[(bit >> 3) % flipped.length]! ^= 1 << (bit % 8);
              expect(failure(() => s.verify({ headers: { 'x-maintainx-webhook-body-signature': header }, rawBody: flipped }, now)).code).to.equal('HOOK_SIGNATURE_INVALID');
            } else {
              const hex = header.slice(header.indexOf('v1=') + 3);
              const i = bit % hex.length;
              const c = (parseInt(hex[i]!, 16) ^ (1 << (bit % 4))).toString(16);
              const bad = `t=${t},v1=${hex.slice(0, i)}${c}${hex.slice(i + 1)}`;
              expect(failure(() => s.verify({ headers: { 'x-maintainx-webhook-body-signature': bad }, rawBody: body }, now)).code).to.equal('HOOK_SIGNATURE_INVALID');
            }
          },
        ), { numRuns: 300 });
      });

      it('never throws anything but a HOOK_* WogateError for garbage headers and bodies', () => {
        const s = source({ webhook: { secrets: [FIXTURE_SECRET], publicUrl: HOOK_URL } });
        fc.assert(fc.property(
          fc.option(fc.string({ unit: 'binary' })), fc.option(fc.string({ unit: 'binary' })), fc.uint8Array({ maxLength: 200 }), fc.option(fc.string()),
          (body, uri, raw, url) => {
            const headers: Record<string, string> = {};
            if (body !== null) headers['x-maintainx-webhook-body-signature'] = body;
            if (uri !== null) headers['x-maintainx-webhook-uri-signature'] = uri;
            try {
              s.verify({ headers, rawBody: Buffer.from(raw), ...(url === null ? {} : { url }) }, now);
              expect.fail('garbage verified');
            } catch (e) {
              expect(e).to.be.instanceOf(WogateError);
              expect((e as WogateError).code).to.match(/^HOOK_/);
            }
          },
        ), { numRuns: 500 });
      });
    });
  });

  describe('parseEvent', () => {
    const s = source();

    it('reads the reference fixture as a doorbell: the partial copy would read as "no vendor"', () => {
      const ev = s.parseEvent(JSON.parse(FIXTURE_BODY), delivery);
      expect(ev).to.deep.equal({ orderId: '9917342', type: 'WORK_ORDER_CHANGE' });
    });

    it('keeps a partial copy that ends the order, with occurredAt as its revision', () => {
      const payload = JSON.parse(FIXTURE_BODY.replace('IN_PROGRESS', 'DONE')) as unknown;
      const ev = s.parseEvent(payload, delivery);
      expect(ev.order?.status).to.equal('completed');
      expect(ev.order?.revision).to.equal('2025-03-04T14:05:09.120Z');
      expect(ev.order?.assetIds).to.deep.equal(['55120']);
    });

    it('maps a complete copy with updatedAt as revision, the same field the API read uses', () => {
      const ev = s.parseEvent({ type: 'NEW_WORK_ORDER', orgId: 1, workOrderId: 4711, occurredAt: '2026-11-21T16:00:01Z', newWorkOrder: fullOrder() }, delivery);
      expect(ev.order).to.deep.include({
        source: 'mx', id: '4711', title: 'Calibrate analyser', site: '812', status: 'in_progress', sourceStatus: 'IN_PROGRESS', vendorId: '301',
        technicianIds: ['9001', '9002'], assetIds: ['55120'], type: 'corrective', approvals: [], revision: '2026-11-21T16:00:00.123Z',
      });
      expect(ev.order?.window.end.toISOString()).to.equal('2026-11-22T18:30:00.000Z');
    });

    it('treats WORK_ORDER_DELETE as a doorbell and refuses events for something else', () => {
      expect(s.parseEvent({ type: 'WORK_ORDER_DELETE', workOrderId: 7, newWorkOrder: fullOrder({ id: 7 }) }, delivery)).to.deep.equal({ orderId: '7', type: 'WORK_ORDER_DELETE' });
      const e = failure(() => s.parseEvent({ newStatus: 'APPROVED', oldStatus: 'PENDING', orgId: 1, requestId: 5 }, delivery));
      expect(e.code).to.equal('HOOK_MAPPING_FAILED');
      expect(e.details).to.deep.include({ field: 'id', path: 'workOrderId' });
      expect(failure(() => s.parseEvent({ workOrderId: 1, newWorkOrder: fullOrder({ id: 2 }) }, delivery)).details).to.deep.include({ path: 'newWorkOrder.id' });
    });

    it('names an unmapped status code and the known ones', () => {
      const e = failure(() => s.parseEvent({ workOrderId: 1, newWorkOrder: fullOrder({ id: 1, status: 'ARCHIVED' }) }, delivery));
      expect(e.code).to.equal('HOOK_MAPPING_FAILED');
      expect(e.message).to.include('"ARCHIVED"').and.include('OPEN, IN_PROGRESS');
      expect(e.details).to.deep.include({ field: 'status', path: 'newWorkOrder.status' });
    });

    it('never throws anything but HOOK_MAPPING_FAILED for arbitrary JSON (property)', () => {
      const wo = fc.record({
        id: fc.oneof(fc.nat(), fc.string()), status: fc.constantFrom('OPEN', 'DONE', 'IN_PROGRESS', 'X', 3), type: fc.option(fc.constantFrom('REACTIVE', 'OTHER', 'NEW')),
        vendorIds: fc.option(fc.array(fc.oneof(fc.nat(), fc.string(), fc.object()))), assigneeIds: fc.jsonValue(), assignees: fc.jsonValue(),
        startDate: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string(), fc.jsonValue()), dueDate: fc.jsonValue(),
        updatedAt: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.jsonValue()), extraFields: fc.dictionary(fc.string(), fc.jsonValue()),
        categories: fc.jsonValue(), assetId: fc.jsonValue(), locationId: fc.jsonValue(),
      }, { requiredKeys: [] });
      const payload = fc.oneof(fc.jsonValue(), fc.record({ type: fc.jsonValue(), workOrderId: fc.oneof(fc.nat(), fc.jsonValue()), occurredAt: fc.jsonValue(), newWorkOrder: fc.oneof(wo, fc.jsonValue()) }, { requiredKeys: [] }));
      const configured = source({ fields: { vendorField: 'Vendor', techniciansField: 'Techs', windowStartField: 'From', assetsField: 'More' }, approval: { field: 'OK by', category: 'ok' } });
      fc.assert(fc.property(payload, fc.boolean(), (p, useFields) => {
        try {
          (useFields ? configured : s).parseEvent(p, delivery);
        } catch (e) {
          expect(e).to.be.instanceOf(WogateError);
          expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        }
      }), { numRuns: 1000 });
    });
  });

  describe('mapping', () => {
    const map = (wo: Record<string, unknown>, m = mapping) => mapMaintainXOrder('mx', wo, m, { path: 'workOrder' });

    it('takes a single vendor, leaves none empty and joins several so that none of them matches', () => {
      expect(map(fullOrder({ vendorIds: [] })).vendorId).to.equal('');
      expect(map(fullOrder({ vendorIds: [12, 3] })).vendorId).to.equal('12+3');
    });

    it('reads technicians from assigneeIds, or from USER assignees of the list endpoint', () => {
      const { assigneeIds: _drop, ...rest } = fullOrder();
      expect(map({ ...rest, assignees: [{ type: 'TEAM', id: 5 }, { type: 'USER', id: 77 }] }).technicianIds).to.deep.equal(['77']);
    });

    it('counts an OPEN order as approved only when the approval field names someone or the category is set', () => {
      const m = buildMapping({ approval: { field: 'Access Approved By', category: 'Vendor Access Approved' } });
      expect(map(fullOrder({ status: 'OPEN' }), m).status).to.equal('awaiting_approval');
      const byField = map(fullOrder({ status: 'OPEN', extraFields: { 'Access Approved By': 'ops-sup; plant-mgr, ops-sup' } }), m);
      expect(byField.status).to.equal('approved');
      expect(byField.approvals).to.deep.equal([{ by: 'ops-sup' }, { by: 'plant-mgr' }]);
      expect(map(fullOrder({ status: 'OPEN', categories: ['Vendor Access Approved'] }), m).status).to.equal('approved');
      expect(map(fullOrder({ status: 'ON_HOLD', categories: ['Vendor Access Approved'] }), m).status).to.equal('on_hold');
      expect(map(fullOrder({ status: 'OPEN' }), buildMapping({ statusMap: { OPEN: 'approved' } })).status).to.equal('approved');
    });

    it('gives an order without both dates an empty window rather than an open-ended one', () => {
      const w = map(fullOrder({ startDate: null })).window;
      expect([w.start.getTime(), w.end.getTime()]).to.deep.equal([0, 0]);
    });

    it('reads configured custom fields and refuses a custom date without offset, naming its path', () => {
      const m = buildMapping({ fields: { vendorField: 'Vendor', techniciansField: 'Techs', assetsField: 'More assets', siteField: 'Site', windowStartField: 'Access from', emergencyCategory: 'Emergency' } });
      const o = map(fullOrder({ categories: ['Emergency'], extraFields: { Vendor: 'acme', Techs: 'jdoe\nasmith', 'More assets': 'PLC-1, 55120', Site: 'north', 'Access from': '2026-11-22T08:00:00Z' } }), m);
      expect(o).to.deep.include({ vendorId: 'acme', technicianIds: ['jdoe', 'asmith'], assetIds: ['55120', 'plc-1'], site: 'north', type: 'emergency' });
      expect(o.window.start.toISOString()).to.equal('2026-11-22T08:00:00.000Z');
      const e = failure(() => map(fullOrder({ extraFields: { 'Access from': '2026-11-22T08:00:00' } }), m));
      expect(e.details).to.deep.include({ field: 'windowStart', path: 'workOrder.extraFields.Access from' });
    });

    it('maps a null type to planned and names an unmapped one', () => {
      expect(map(fullOrder({ type: null })).type).to.equal('planned');
      expect(map(fullOrder({ type: 'PREVENTIVE' })).type).to.equal('planned');
      expect(failure(() => map(fullOrder({ type: 'INSPECTION' }))).message).to.include('"INSPECTION"');
    });

    it('refuses a status map naming an unknown canonical status', () => {
      expect(failure(() => buildMapping({ statusMap: { OPEN: 'granted' as never } })).code).to.equal('CONFIG_INVALID');
    });
  });

  describe('api', () => {
    let s: MaintainXSource;
    before(() => nock.disableNetConnect());
    after(() => nock.enableNetConnect());
    beforeEach(() => {
      s = source();
    });
    afterEach(async () => {
      nock.cleanAll();
      await s.close();
    });

    it('re-reads one order with the bearer key and expand, and answers undefined for 404', async () => {
      let seen = '';
      nock(ORIGIN, { reqheaders: { authorization: `Bearer ${API_KEY}` } }).get((u) => ((seen = u.includes('?') ? u : seen), u.startsWith('/v1/workorders/4711'))).reply(200, { workOrder: fullOrder() });
      const o = await s.api.fetchOrder('4711', ctx);
      expect(o?.vendorId).to.equal('301');
      expect(new URLSearchParams(seen.split('?')[1]).getAll('expand')).to.deep.equal(['assignees', 'extra_fields']);
      nock(ORIGIN).get('/v1/workorders/4712').query(true).reply(404, { error: 'Work Order Not Found' });
      expect(await s.api.fetchOrder('4712', ctx)).to.equal(undefined);
    });

    it('refuses an id that is not a MaintainX id before sending anything', async () => {
      const e = await rejection(s.api.fetchOrder('../assets', ctx));
      expect(e.retryable).to.equal(false);
    });

    it('classifies 401 as final and names method and path only', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(401, '', { 'content-type': 'text/plain' });
      const e = await rejection(s.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('GET /v1/workorders/1 answered 401').and.not.include('expand');
    });

    it('classifies 429 as retryable with Retry-After, or MaintainX X-Rate-Limit-Reset, in milliseconds', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(429, { error: 'slow down' }, { 'Retry-After': '7' });
      expect((await rejection(s.api.fetchOrder('1', ctx))).details).to.deep.include({ retryAfterMs: 7000, status: 429 });
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(429, '', { 'X-Rate-Limit-Reset': '12' });
      const e = await rejection(s.api.fetchOrder('1', ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details).to.deep.include({ retryAfterMs: 12000 });
    });

    it('classifies 500, timeouts and network errors as retryable', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(500, 'boom');
      expect((await rejection(s.api.fetchOrder('1', ctx))).retryable).to.equal(true);
      const slow = source({ timeoutMs: 50 });
      nock(ORIGIN).get('/v1/workorders/1').query(true).delay(500).reply(200, { workOrder: fullOrder() });
      const t = await rejection(slow.api.fetchOrder('1', ctx));
      expect(t.retryable).to.equal(true);
      expect(t.message).to.include('no answer within 50 ms');
      await slow.close();
      nock(ORIGIN).get('/v1/workorders/1').query(true).replyWithError(Object.assign(new Error(`connect ECONNREFUSED ${BASE}?key=${API_KEY}`), { code: 'ECONNREFUSED' }));
      const n = await rejection(s.api.fetchOrder('1', ctx));
      expect(n.retryable).to.equal(true);
      expect(n.message).to.include('ECONNREFUSED');
    });

    it('reports malformed JSON, an HTML page and a wrong envelope as SOURCE_RESPONSE_INVALID', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(200, '{"workOrder": {', { 'content-type': 'application/json' });
      const bad = await rejection(s.api.fetchOrder('1', ctx));
      expect(bad.details).to.deep.include({ code: 'SOURCE_RESPONSE_INVALID', method: 'GET', path: '/v1/workorders/1' });
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(200, `<html>Sign in. Token ${API_KEY}</html>`, { 'content-type': 'text/html; charset=utf-8' });
      const html = await rejection(s.api.fetchOrder('1', ctx));
      expect(html.message).to.include('text/html that is not JSON');
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(200, { data: {} });
      expect((await rejection(s.api.fetchOrder('1', ctx))).message).to.include('"workOrder" object');
    });

    it('does not follow redirects', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(302, '', { location: 'http://elsewhere.test/steal' });
      expect((await rejection(s.api.fetchOrder('1', ctx))).message).to.include('redirects are not followed');
    });

    it('turns an unreadable record into a response error naming field and path', async () => {
      nock(ORIGIN).get('/v1/workorders/1').query(true).reply(200, { workOrder: fullOrder({ status: 'ARCHIVED' }) });
      const e = await rejection(s.api.fetchOrder('1', ctx));
      expect(e.details).to.deep.include({ code: 'SOURCE_RESPONSE_INVALID', field: 'status', recordPath: 'workOrder.status', path: '/v1/workorders/1' });
    });

    describe('poll', () => {
      const since = new Date('2026-11-21T00:00:00Z');

      it('lists newest first from the cursor, follows every page and advances to the newest updatedAt', async () => {
        const urls: string[] = [];
        nock(ORIGIN).get((u) => (u.includes('?') && urls.push(u), u.startsWith('/v1/workorders'))).reply(200, {
          workOrders: [fullOrder({ id: 3, updatedAt: '2026-11-21T12:00:00.000Z' }), fullOrder({ id: 2, updatedAt: '2026-11-21T11:00:00.000Z' })], nextCursor: 'c2',
        });
        nock(ORIGIN).get((u) => (u.includes('?') && urls.push(u), u.startsWith('/v1/workorders'))).reply(200, { workOrders: [fullOrder({ id: 1, updatedAt: '2026-11-21T00:00:00.000Z' })], nextCursor: null });
        const r = await s.api.poll(undefined, since, ctx);
        expect(r.orders.map((o) => o.id)).to.deep.equal(['3', '2', '1']);
        expect(r.cursor).to.equal('mx1:2026-11-21T12:00:00.000Z');
        const q = new URLSearchParams(urls[0]!.split('?')[1]);
        expect(q.get('sort')).to.equal('-updatedAt');
        expect(q.get('updatedAt[gte]')).to.equal('2026-11-21T00:00:00.000Z');
        expect(q.get('show_upcoming')).to.equal('true');
        expect(q.getAll('expand')).to.include.members(['vendor_ids', 'extra_fields', 'assignees']);
        expect(new URLSearchParams(urls[1]!.split('?')[1]).get('cursor')).to.equal('c2');
      });

      it('stops at the first order older than the cursor where the filter is not honoured', async () => {
        nock(ORIGIN).get(/\/v1\/workorders/).reply(200, {
          workOrders: [fullOrder({ id: 2, updatedAt: '2026-11-21T11:00:00.000Z' }), fullOrder({ id: 1, updatedAt: '2026-11-20T11:00:00.000Z', status: 'WHATEVER' })], nextCursor: 'more',
        });
        const r = await s.api.poll('mx1:2026-11-21T00:00:00.000Z', since, ctx);
        expect(r.orders.map((o) => o.id)).to.deep.equal(['2']);
      });

      it('keeps the cursor when nothing changed', async () => {
        nock(ORIGIN).get(/\/v1\/workorders/).reply(200, { workOrders: [], nextCursor: null });
        expect((await s.api.poll('mx1:2026-11-21T05:00:00.000Z', since, ctx)).cursor).to.equal('mx1:2026-11-21T05:00:00.000Z');
      });

      it('fails as a whole when a later page fails, so the old cursor stays', async () => {
        nock(ORIGIN).get(/\/v1\/workorders/).reply(200, { workOrders: [fullOrder({ updatedAt: '2026-11-21T12:00:00.000Z' })], nextCursor: 'p2' });
        nock(ORIGIN).get(/\/v1\/workorders/).reply(200, { workOrders: [fullOrder({ id: 5, updatedAt: '2026-11-21T11:00:00.000Z' })], nextCursor: 'p3' });
        nock(ORIGIN).get(/\/v1\/workorders/).reply(503, 'unavailable');
        const e = await rejection(s.api.poll(undefined, since, ctx));
        expect(e.retryable).to.equal(true);
      });

      it('refuses a cursor chain that repeats and a stored cursor it did not write', async () => {
        nock(ORIGIN).get(/\/v1\/workorders/).times(2).reply(200, { workOrders: [], nextCursor: 'same' });
        expect((await rejection(s.api.poll(undefined, since, ctx))).message).to.include('repeats');
        expect((await rejection(s.api.poll('2026-11-21', since, ctx))).retryable).to.equal(false);
      });
    });

    it('lists open orders by status, every page, and drops any the server sends in a closed status', async () => {
      const urls: string[] = [];
      nock(ORIGIN).get((u) => (u.includes('?') && urls.push(u), true)).reply(200, { workOrders: [fullOrder({ id: 1 }), fullOrder({ id: 2, status: 'DONE' })], nextCursor: 'n' });
      nock(ORIGIN).get((u) => (u.includes('?') && urls.push(u), true)).reply(200, { workOrders: [fullOrder({ id: 3, status: 'OPEN' })] });
      const open = await s.api.listOpen(ctx);
      expect(open.map((o) => [o.id, o.status])).to.deep.equal([['1', 'in_progress'], ['3', 'awaiting_approval']]);
      expect(new URLSearchParams(urls[0]!.split('?')[1]).getAll('statuses')).to.deep.equal(['OPEN', 'IN_PROGRESS', 'ON_HOLD']);
    });

    it('lists assets with class, criticality, site and zone', async () => {
      const a = source({ assetFields: { criticality: 'Criticality', zone: 'Zone' } });
      nock(ORIGIN).get(/\/v1\/assets/).reply(200, {
        assets: [{ id: 55120, name: 'AHU-3 VFD', locationId: 812, assetTypes: ['VFD'], extraFields: { Criticality: 'High', Zone: 'L2' } }, { id: 9, name: 'Pump', locationId: null, extraFields: { Criticality: 'meh' } }],
        nextCursor: null,
      });
      expect(await a.api.listAssets(ctx)).to.deep.equal([
        { id: '55120', name: 'AHU-3 VFD', class: 'VFD', criticality: 'high', site: '812', zone: 'L2' },
        { id: '9', name: 'Pump' },
      ]);
      await a.close();
    });

    it('writes a comment without ringing its own webhook, and reports a missing order as final', async () => {
      let body: unknown;
      let uri = '';
      nock(ORIGIN).post((u) => ((uri = u.includes('?') ? u : uri), u.startsWith('/v1/workorders/4711/comments')), (b) => ((body = b), true)).reply(201, { id: 1 });
      await s.api.writeBack('4711', 'wogate: access granted to acme until 13:30', ctx);
      expect(body).to.deep.equal({ content: 'wogate: access granted to acme until 13:30' });
      expect(uri).to.include('skipWebhook=true');
      nock(ORIGIN).post(/comments/).reply(404, { error: 'Work Order Not Found' });
      expect((await rejection(s.api.writeBack('4711', 'x', ctx))).retryable).to.equal(false);
    });
  });

  describe('configuration', () => {
    it('exports a draft-07 schema fragment that accepts the documented example and refuses unknown keys', () => {
      const ajv = new Ajv.default({ strict: false });
      const validate = ajv.compile({
        definitions: {
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' },
          secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' },
        },
        ...maintainxSourceSchema,
      });
      const example = {
        id: 'maintainx', kind: 'maintainx', apiKey: 'env:MAINTAINX_API_KEY', timeout: '10s', pageSize: 100,
        webhook: { secrets: ['env:MX_HOOK_SECRET_CHANGE', 'env:MX_HOOK_SECRET_NEW'], tolerance: '5m', publicUrl: 'https://wogate.example.com/v1/hooks/maintainx' },
        statusMap: { OPEN: 'awaiting_approval' }, typeMap: { OTHER: 'planned' },
        fields: { vendorField: 'Vendor ID', techniciansField: 'Vendor Technicians' }, approval: { field: 'Access Approved By', category: 'Vendor Access Approved' },
        assetFields: { criticality: 'Criticality', zone: 'Zone' },
      };
      expect(validate(example), JSON.stringify(validate.errors)).to.equal(true);
      expect(validate({ ...example, apiKey: 'inline-key' })).to.equal(false);
      expect(validate({ ...example, fields: { vendor: 'x' } })).to.equal(false);
    });

    it('refuses an API key with a line break without showing it', () => {
      try {
        source({ apiKey: 'abc\r\nX-Evil: 1' });
        expect.fail('accepted');
      } catch (e) {
        expect((e as WogateError).code).to.equal('CONFIG_INVALID');
        expect((e as WogateError).message).not.to.include('abc');
      }
    });
  });

  it('signs like the MaintainX documentation snippet (hex HMAC over "<t>.<payload>")', () => {
    const expected = createHmac('sha256', 'k').update('5.{}', 'utf8').digest('hex');
    expect(signMaintainX('k', 5, '{}')).to.equal(`t=5,v1=${expected}`);
  });
});
