import { expect } from 'chai';
import fc from 'fast-check';
import { WogateError } from '../../../src/domain/errors.js';
import type { WorkOrder } from '../../../src/domain/workorder.js';
import { getPath, mapWorkOrder, type FieldMapping, type SourceMapping } from '../../../src/sources/mapping.js';
import { canonicalOrder, clipText } from '../../../src/sources/canonical-order.js';

const FALLBACK = '2026-11-22T08:59:00.000Z';

// The shape config/wogate.example.yaml documents: Maximo names under a Standard Webhooks envelope.
const maximo: SourceMapping = {
  fields: {
    id: 'data.workOrder.wonum',
    status: 'data.workOrder.status',
    title: 'data.workOrder.description',
    site: 'data.workOrder.siteid',
    type: 'data.workOrder.worktype',
    vendorId: 'data.workOrder.vendor.id',
    technicians: 'data.workOrder.technicians',
    technicianIdField: 'id',
    assets: 'data.workOrder.assets',
    assetIdField: 'assetnum',
    windowStart: 'data.workOrder.schedstart',
    windowEnd: 'data.workOrder.schedfinish',
    approvals: 'data.workOrder.approvals',
    approverField: 'by',
    approvedAtField: 'at',
    revision: 'data.workOrder._rowstamp',
  },
  statusMap: { WAPPR: 'awaiting_approval', APPR: 'approved', INPRG: 'in_progress', COMP: 'completed', CLOSE: 'closed', CAN: 'cancelled' },
  typeMap: { PM: 'planned', CM: 'corrective', EM: 'emergency' },
};

function maximoPayload(): { type: string; data: { workOrder: Record<string, unknown> } } {
  return {
    type: 'workorder.changed',
    data: {
      workOrder: {
        wonum: ' WO-1042 ',
        description: '  Calibrate chlorine analyser  ',
        siteid: 'north-wtp',
        status: 'APPR',
        worktype: 'CM',
        vendor: { id: 'acme-controls' },
        technicians: [{ id: 'tech-jdoe' }, { id: 'tech-asmith' }, { id: ' tech-jdoe' }],
        assets: [{ assetnum: 'PLC-CL2-01' }, { assetnum: 'HMI-FLT-01' }, { assetnum: 'PLC-CL2-01' }],
        schedstart: '2026-11-22T09:00:00-05:00',
        schedfinish: '2026-11-22T13:30:00.250-05:00',
        approvals: [{ by: 'ops-supervisor', at: '2026-11-21T16:00:00Z' }, { by: 'ops-supervisor' }, { by: 'plant-manager' }],
        _rowstamp: 884412,
      },
    },
  };
}

function expectMappingError(fn: () => unknown, field: string, path: string): WogateError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    const err = e as WogateError;
    expect(err.code, err.message).to.equal('HOOK_MAPPING_FAILED');
    expect(err.details).to.deep.equal({ field, path });
    expect(err.message.startsWith(`${field}: `), err.message).to.equal(true);
    expect(err.message).to.include(`"${path}"`);
    return err;
  }
  expect.fail(`expected HOOK_MAPPING_FAILED for ${field}`);
}

function withOrder(patch: Record<string, unknown>): unknown {
  const p = maximoPayload();
  Object.assign(p.data.workOrder, patch);
  return p;
}

function withFields(patch: Partial<FieldMapping>): SourceMapping {
  return { ...maximo, fields: { ...maximo.fields, ...patch } };
}

describe('source mapping', () => {
  describe('mapWorkOrder', () => {
    it('maps a Maximo-like payload, trimming values and collapsing duplicate people and assets', () => {
      const wo = mapWorkOrder('maximo', maximoPayload(), maximo, FALLBACK);
      const expected: WorkOrder = {
        source: 'maximo',
        id: 'WO-1042',
        title: 'Calibrate chlorine analyser',
        site: 'north-wtp',
        status: 'approved',
        sourceStatus: 'APPR',
        vendorId: 'acme-controls',
        technicianIds: ['tech-jdoe', 'tech-asmith'],
        assetIds: ['plc-cl2-01', 'hmi-flt-01'],
        window: { start: new Date('2026-11-22T14:00:00Z'), end: new Date('2026-11-22T18:30:00.250Z') },
        type: 'corrective',
        approvals: [{ by: 'ops-supervisor', at: new Date('2026-11-21T16:00:00Z') }, { by: 'plant-manager' }],
        revision: '884412',
      };
      expect(wo).to.deep.equal(expected);
    });

    it('maps a MaintainX-like payload: numeric ids, single values, array indexes in paths, epoch dates', () => {
      const payload = {
        type: 'WORK_ORDER_CHANGE',
        orgId: 48213,
        workOrderId: 9917342,
        occurredAt: '2025-03-04T14:05:09.120Z',
        newWorkOrder: {
          title: 'Replace VFD on AHU-3',
          status: 'IN_PROGRESS',
          vendors: [{ id: 311, name: 'Acme Drives' }],
          assignees: ['u-77', 'u-78'],
          assetId: 55120,
          startDate: 1741168800,
          dueDate: 1741298400000,
        },
      };
      const mapping: SourceMapping = {
        fields: {
          id: 'workOrderId',
          status: 'newWorkOrder.status',
          title: 'newWorkOrder.title',
          vendorId: 'newWorkOrder.vendors.0.id',
          technicians: 'newWorkOrder.assignees',
          assets: 'newWorkOrder.assetId',
          windowStart: 'newWorkOrder.startDate',
          windowEnd: 'newWorkOrder.dueDate',
          approvals: 'newWorkOrder.approvals',
        },
        statusMap: { OPEN: 'approved', IN_PROGRESS: 'in_progress', ON_HOLD: 'on_hold', DONE: 'completed' },
      };
      expect(mapWorkOrder('mx', payload, mapping, FALLBACK)).to.deep.equal({
        source: 'mx',
        id: '9917342',
        title: 'Replace VFD on AHU-3',
        status: 'in_progress',
        sourceStatus: 'IN_PROGRESS',
        vendorId: '311',
        technicianIds: ['u-77', 'u-78'],
        assetIds: ['55120'],
        window: { start: new Date(1741168800_000), end: new Date(1741298400000) },
        type: 'planned',
        approvals: [],
        revision: FALLBACK,
      });
    });

    it('reads SAP OData V2 /Date(ms+0000)/ values and accepts every ISO-8601 offset form', () => {
      const cases: [unknown, string][] = [
        ['/Date(1741161600000+0000)/', '2025-03-05T08:00:00.000Z'],
        ['/Date(1741161600000)/', '2025-03-05T08:00:00.000Z'],
        ['2025-03-05T08:00Z', '2025-03-05T08:00:00.000Z'],
        ['2025-03-05 13:30:00+05:30', '2025-03-05T08:00:00.000Z'],
        ['2025-03-05T13:30:00+0530', '2025-03-05T08:00:00.000Z'],
        ['2025-03-05T08:00:00,123456z', '2025-03-05T08:00:00.123Z'],
        [1741161600, '2025-03-05T08:00:00.000Z'],
        [1741161600000, '2025-03-05T08:00:00.000Z'],
      ];
      for (const [value, iso] of cases) {
        const wo = mapWorkOrder('s', withOrder({ schedstart: value }), maximo, FALLBACK);
        expect(wo.window.start.toISOString(), String(value)).to.equal(iso);
      }
    });

    it('leaves an end before the start to the policy (WINDOW_INVALID), not the mapper', () => {
      const wo = mapWorkOrder('s', withOrder({ schedstart: '2026-11-22T13:00:00Z', schedfinish: '2026-11-22T09:00:00Z' }), maximo, FALLBACK);
      expect(wo.window.end.getTime()).to.be.lessThan(wo.window.start.getTime());
    });

    it('uses the event time as revision and "planned" as type when those paths are not configured', () => {
      const fields = { ...maximo.fields };
      delete fields.revision;
      delete fields.type;
      const wo = mapWorkOrder('s', maximoPayload(), { ...maximo, fields }, FALLBACK);
      expect([wo.revision, wo.type]).to.deep.equal([FALLBACK, 'planned']);
    });

    it('takes canonical type names as they are when there is no typeMap', () => {
      const { typeMap: _unused, ...noTypeMap } = maximo;
      expect(mapWorkOrder('s', withOrder({ worktype: 'emergency' }), noTypeMap, FALLBACK).type).to.equal('emergency');
      expectMappingError(() => mapWorkOrder('s', withOrder({ worktype: 'EM' }), noTypeMap, FALLBACK), 'type', 'data.workOrder.worktype');
    });

    it('treats an explicit null list as empty and leaves out absent optional text', () => {
      const wo = mapWorkOrder('s', withOrder({ technicians: null, assets: null, approvals: undefined, description: null, siteid: '  ' }), withFields({ site: 'data.workOrder.nosuch' }), FALLBACK);
      expect(wo.technicianIds).to.deep.equal([]);
      expect(wo.assetIds).to.deep.equal([]);
      expect(wo.approvals).to.deep.equal([]);
      expect(wo).not.to.have.property('title');
      expect(wo).not.to.have.property('site');
    });

    it('accepts one id or one object where a list is expected', () => {
      const wo = mapWorkOrder('s', withOrder({ technicians: 'tech-solo', assets: { assetnum: 'PLC-9' } }), maximo, FALLBACK);
      expect([wo.technicianIds, wo.assetIds]).to.deep.equal([['tech-solo'], ['plc-9']]);
    });

    describe('errors name the canonical field and the JSON path', () => {
      const P = 'data.workOrder';
      const cases: [string, Record<string, unknown>, string, string, RegExp?][] = [
        ['a missing id', { wonum: undefined }, 'id', `${P}.wonum`, /id: path "data\.workOrder\.wonum" is missing/],
        ['an id that is an object', { wonum: { v: 1 } }, 'id', `${P}.wonum`, /is an object/],
        ['an empty id', { wonum: '   ' }, 'id', `${P}.wonum`, /empty/],
        ['an id over 200 characters', { wonum: 'x'.repeat(201) }, 'id', `${P}.wonum`, /200/],
        ['an id with a control character', { wonum: 'WO\u00001' }, 'id', `${P}.wonum`, /control/],
        ['an id that is not a finite number', { wonum: Number.POSITIVE_INFINITY }, 'id', `${P}.wonum`],
        ['an unmapped status', { status: 'FOO' }, 'status', `${P}.status`,
          /^status: source status "FOO" at "data\.workOrder\.status" has no mapping in statusMap \(known: WAPPR, APPR, INPRG/],
        ['a status named like an inherited member', { status: 'constructor' }, 'status', `${P}.status`, /no mapping/],
        ['a missing vendor', { vendor: {} }, 'vendorId', `${P}.vendor.id`],
        ['a missing technicians list', { technicians: undefined }, 'technicians', `${P}.technicians`, /missing/],
        ['a technician object without its id', { technicians: [{ id: 't1' }, { name: 'x' }] }, 'technicians', `${P}.technicians.1.id`],
        ['an asset that is a boolean', { assets: [{ assetnum: 'A' }, true] }, 'assets', `${P}.assets.1`, /a boolean/],
        ['an asset object with an object id', { assets: [{ assetnum: ['A'] }] }, 'assets', `${P}.assets.0.assetnum`, /an array/],
        ['a missing window end', { schedfinish: undefined }, 'windowEnd', `${P}.schedfinish`, /^windowEnd: path "data\.workOrder\.schedfinish" is missing$/],
        ['a start without a timezone offset', { schedstart: '2026-11-22T09:00:00' }, 'windowStart', `${P}.schedstart`, /offset/],
        ['a date-only start', { schedstart: '2026-11-22' }, 'windowStart', `${P}.schedstart`],
        ['an impossible calendar date', { schedstart: '2026-02-30T09:00:00Z' }, 'windowStart', `${P}.schedstart`],
        ['an unparseable end', { schedfinish: 'tomorrow-ish' }, 'windowEnd', `${P}.schedfinish`, /not a valid date-time/],
        ['a negative epoch', { schedfinish: -5 }, 'windowEnd', `${P}.schedfinish`],
        ['an epoch beyond what a Date holds', { schedfinish: 1e300 }, 'windowEnd', `${P}.schedfinish`],
        ['a boolean date', { schedstart: true }, 'windowStart', `${P}.schedstart`],
        ['an unmapped type', { worktype: 'XX' }, 'type', `${P}.worktype`, /known: PM, CM, EM/],
        ['a missing type when its path is configured', { worktype: undefined }, 'type', `${P}.worktype`],
        ['an approval object without its approver', { approvals: [{ at: '2026-11-21T16:00:00Z' }] }, 'approvals', `${P}.approvals.0.by`],
        ['an approval with a bad date', { approvals: [{ by: 'x', at: 'yesterday' }] }, 'approvals', `${P}.approvals.0.at`],
        ['a missing configured revision', { _rowstamp: undefined }, 'revision', `${P}._rowstamp`],
        ['a title that is an object', { description: { text: 'x' } }, 'title', `${P}.description`],
        ['a site with a newline', { siteid: 'north\nsouth' }, 'site', `${P}.siteid`],
      ];
      for (const [name, patch, field, path, message] of cases) {
        it(`${name} → ${field}`, () => {
          const e = expectMappingError(() => mapWorkOrder('s', withOrder(patch), maximo, FALLBACK), field, path);
          if (message) expect(e.message).to.match(message);
        });
      }

      it('an object item with no id field configured names the item path', () => {
        const { technicianIdField: _unused, ...fields } = maximo.fields;
        expectMappingError(() => mapWorkOrder('s', maximoPayload(), { ...maximo, fields }, FALLBACK), 'technicians', `${P}.technicians.0`);
      });

      it('quotes and shortens a long source status instead of echoing it whole', () => {
        const e = expectMappingError(() => mapWorkOrder('s', withOrder({ status: `"${'Z'.repeat(150)}` }), maximo, FALLBACK), 'status', `${P}.status`);
        expect(e.message.length).to.be.lessThan(300);
        expect(e.message).to.include('\\"ZZZ');
      });
    });
  });

  describe('getPath', () => {
    const doc = { a: { b: [{ c: 1 }, { c: null }] }, 'x-y': 'ok' };

    it('walks objects and array indexes', () => {
      expect(getPath(doc, 'a.b.0.c')).to.equal(1);
      expect(getPath(doc, 'a.b.1.c')).to.equal(null);
      expect(getPath(doc, 'x-y')).to.equal('ok');
      expect(getPath(doc, 'a.b.2.c')).to.equal(undefined);
      expect(getPath(doc, 'a.b.01')).to.equal(undefined);
      expect(getPath(doc, 'a..b')).to.equal(undefined);
      expect(getPath(Object.assign(Object.create(null) as object, { k: 2 }), 'k')).to.equal(2);
    });

    it('never reaches prototypes or inherited members', () => {
      const polluted = JSON.parse('{"__proto__": {"admin": true}, "constructor": {"prototype": {"admin": true}}}') as unknown;
      for (const path of ['__proto__', '__proto__.admin', 'constructor', 'constructor.prototype.admin', 'prototype']) {
        expect(getPath(polluted, path), path).to.equal(undefined);
      }
      for (const path of ['toString', 'hasOwnProperty', 'a.valueOf', 'a.b.length', 'a.b.map', 'a.b.0.constructor']) {
        expect(getPath(doc, path), path).to.equal(undefined);
      }
    });

    it('does not look inside class instances, strings or boxed values, nor call getters', () => {
      let called = false;
      const withGetter = Object.defineProperty({}, 'g', { enumerable: true, get: () => { called = true; return 1; } });
      expect(getPath({ d: new Date(0) }, 'd.getTime')).to.equal(undefined);
      expect(getPath({ m: new Map([['k', 1]]) }, 'm.k')).to.equal(undefined);
      expect(getPath({ s: 'abc' }, 's.0')).to.equal(undefined);
      expect(getPath({ s: 'abc' }, 's.length')).to.equal(undefined);
      expect(getPath(withGetter, 'g')).to.equal(undefined);
      expect(called).to.equal(false);
    });
  });

  describe('properties', () => {
    const anything = fc.anything({
      withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withDate: true,
      withTypedArray: true, withSparseArray: true, withBigInt: true, withObjectString: true, maxDepth: 5,
    });

    function mappingFailureOrOrder(run: () => WorkOrder): WogateError | WorkOrder {
      try {
        return run();
      } catch (e) {
        expect(e).to.be.instanceOf(WogateError);
        expect((e as WogateError).code).to.equal('HOOK_MAPPING_FAILED');
        return e as WogateError;
      }
    }

    it('answers any payload with a WorkOrder or HOOK_MAPPING_FAILED', () => {
      fc.assert(fc.property(anything, (payload) => {
        mappingFailureOrOrder(() => mapWorkOrder('s', payload, maximo, FALLBACK));
        mappingFailureOrOrder(() => mapWorkOrder('s', { data: { workOrder: payload } }, maximo, FALLBACK));
      }), { numRuns: 500 });
    });

    it('blames exactly the field whose value was replaced by arbitrary JSON', () => {
      const fieldByKey: Record<string, string> = {
        wonum: 'id', status: 'status', description: 'title', siteid: 'site', worktype: 'type', vendor: 'vendorId',
        technicians: 'technicians', assets: 'assets', schedstart: 'windowStart', schedfinish: 'windowEnd',
        approvals: 'approvals', _rowstamp: 'revision',
      };
      fc.assert(fc.property(fc.constantFrom(...Object.keys(fieldByKey)), fc.jsonValue(), (key, value) => {
        const out = mappingFailureOrOrder(() => mapWorkOrder('s', withOrder({ [key]: value }), maximo, FALLBACK));
        if (out instanceof WogateError) expect(out.details?.field).to.equal(fieldByKey[key]);
      }), { numRuns: 1000 });
    });

    it('getPath returns only values reachable through own properties', () => {
      const segment = fc.oneof(
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'length', '0', '1', 'a', 'b'),
        fc.string({ maxLength: 4 }),
      );
      const tree = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
      fc.assert(fc.property(fc.oneof(tree, anything), fc.array(segment, { minLength: 1, maxLength: 5 }), (root, segs) => {
        const got = getPath(root, segs.join('.'));
        if (got === undefined) return;
        let cur: unknown = root;
        for (const seg of segs.join('.').split('.')) {
          expect(['__proto__', 'constructor', 'prototype']).not.to.include(seg);
          expect(typeof cur === 'object' && cur !== null && Object.hasOwn(cur, seg), seg).to.equal(true);
          cur = (cur as Record<string, unknown>)[seg];
        }
        expect(got).to.equal(cur);
        // JSON holds no functions, so a function could only have come from a prototype.
        expect(typeof got).not.to.equal('function');
      }), { numRuns: 1000 });
    });
  });
});

describe('canonicalOrder: the last step of every source mapping', () => {
  const base: WorkOrder = {
    source: 's', id: 'WO-1', status: 'approved', sourceStatus: 'APPR', vendorId: 'ACME', technicianIds: ['JDoe', 'jdoe', 'ｊｄｏｅ'], assetIds: ['PLC-1', 'plc-1'],
    window: { start: new Date(0), end: new Date(1) }, type: 'planned', approvals: [{ by: 'Alice' }, { by: 'alice', at: new Date(5) }, { by: 'bob' }], revision: '7',
  };
  const refusal = (o: WorkOrder): WogateError => {
    try {
      canonicalOrder(o);
    } catch (e) {
      if (e instanceof WogateError) return e;
      throw e;
    }
    return expect.fail('expected HOOK_MAPPING_FAILED');
  };

  it('folds vendor, technician, asset and approver ids and collapses what folding makes equal, keeping the first approval', () => {
    expect(canonicalOrder(base)).to.deep.include({ vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['plc-1'], approvals: [{ by: 'alice' }, { by: 'bob' }], id: 'WO-1' });
    expect(canonicalOrder({ ...base, vendorId: '' }).vendorId, 'no vendor stays no vendor').to.equal('');
  });

  it('refuses, naming the field, an id with a format character, and any text or id with a lone surrogate', () => {
    const cases: [Partial<WorkOrder>, RegExp][] = [
      [{ technicianIds: ['jdoe', 'asmith\u2060'] }, /^technicians\[1\] holds an invisible format character \(U\+2060 at position 6\)/],
      [{ assetIds: ['\ufeffPLC-1'] }, /^assets\[0\] holds an invisible format character \(U\+FEFF at position 0\)/],
      [{ vendorId: 'ac\u00adme' }, /^vendorId holds an invisible format character \(U\+00AD/],
      [{ approvals: [{ by: 'alice' }, { by: 'alice\u200b' }] }, /^approvals\[1\]\.by holds an invisible format character \(U\+200B at position 5\)/],
      [{ id: 'PRB-\ud800' }, /^id holds a lone UTF-16 surrogate/],
      [{ title: 'pump \udc00' }, /^title holds a lone UTF-16 surrogate/],
      [{ sourceStatus: '\ud83dAPPR' }, /^sourceStatus holds a lone UTF-16 surrogate/],
      [{ revision: 'Infinity' }, /^revision "Infinity" is neither a finite number nor an ISO-8601 date-time/],
    ];
    for (const [over, message] of cases) {
      const e = refusal({ ...base, ...over });
      expect(e.code).to.equal('HOOK_MAPPING_FAILED');
      expect(e.message).to.match(message);
    }
  });

  it('never cuts a surrogate pair when clipping text', () => {
    expect(clipText('ab😀', 3)).to.equal('ab');
    expect(clipText('ab😀', 4)).to.equal('ab😀');
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.nat({ max: 40 }), (s, n) => {
      expect(/\p{Cs}/u.test(clipText(s, n))).to.equal(false);
    }));
  });
});
