import { expect } from 'chai';
import fc from 'fast-check';
import { WogateError, type ErrorCode } from '../../../src/domain/errors.js';
import { parseSecret, signWebhook, verifyWebhook, type VerifyInput } from '../../../src/sources/standard-webhooks.js';

// The official vector from standard-webhooks/libraries/javascript/src/webhook.test.ts.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const PAYLOAD = '{"test": 2432232314}';
const SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
const KEY = parseSecret(SECRET);
const OTHER = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=';

function input(over: Partial<VerifyInput> & { headers?: VerifyInput['headers'] } = {}): VerifyInput {
  return {
    headers: { id: MSG_ID, timestamp: String(TS), signature: SIGNATURE },
    rawBody: Buffer.from(PAYLOAD),
    secrets: [KEY],
    now: new Date(TS * 1000),
    ...over,
  };
}

function withHeaders(h: Partial<VerifyInput['headers']>): VerifyInput {
  return input({ headers: { ...input().headers, ...h } });
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

function expectCode(v: VerifyInput, code: ErrorCode): WogateError {
  const e = failure(() => verifyWebhook(v));
  expect(e.code, e.message).to.equal(code);
  // Nothing an attacker could use to forge a signature, and no key material, ever reaches a message.
  expect(e.message).not.to.include(SIGNATURE.slice(3));
  expect(e.message).not.to.include(SECRET.slice(6));
  expect(JSON.stringify(e.details ?? {})).not.to.include(SIGNATURE.slice(3));
  return e;
}

function randomKey(seed: number): Buffer {
  return Buffer.alloc(32, seed);
}

describe('Standard Webhooks', () => {
  describe('parseSecret', () => {
    it('accepts the secret with and without the whsec_ prefix', () => {
      expect(parseSecret(SECRET).equals(parseSecret(SECRET.slice(6)))).to.equal(true);
      expect(KEY.length).to.equal(24);
    });

    it('accepts 24 to 64 byte keys and ignores surrounding whitespace from secret files', () => {
      expect(parseSecret(`whsec_${Buffer.alloc(64, 1).toString('base64')}\n`).length).to.equal(64);
      expect(parseSecret(Buffer.alloc(24, 2).toString('base64')).length).to.equal(24);
    });

    for (const [name, secret] of [
      ['shorter than 24 bytes', `whsec_${Buffer.alloc(23, 9).toString('base64')}`],
      ['longer than 64 bytes', `whsec_${Buffer.alloc(65, 9).toString('base64')}`],
      ['not base64', 'whsec_this-is-not/base64!!but-long-enough-to-matter'],
      ['base64 with an embedded space', `whsec_${SECRET.slice(6, 14)} ${SECRET.slice(14)}`],
      ['empty', 'whsec_'],
    ] as const) {
      it(`refuses a secret that is ${name}, without echoing it`, () => {
        const e = failure(() => parseSecret(secret));
        expect(e.code).to.equal('CONFIG_INVALID');
        if (secret.length > 6) expect(e.message).not.to.include(secret.slice(6, 20));
      });
    }
  });

  describe('signWebhook', () => {
    it('reproduces the official test vector', () => {
      expect(signWebhook(KEY, MSG_ID, TS, PAYLOAD)).to.equal(SIGNATURE);
      expect(signWebhook(KEY, MSG_ID, TS, Buffer.from(PAYLOAD))).to.equal(SIGNATURE);
    });

    it('refuses ids and timestamps that verification would refuse', () => {
      expect(failure(() => signWebhook(KEY, 'a.b', TS, '')).code).to.equal('INTERNAL');
      expect(failure(() => signWebhook(KEY, MSG_ID, 1.5, '')).code).to.equal('INTERNAL');
      expect(failure(() => signWebhook(KEY, MSG_ID, -1, '')).code).to.equal('INTERNAL');
    });
  });

  describe('verifyWebhook', () => {
    it('accepts the official test vector and returns the id and timestamp', () => {
      expect(verifyWebhook(input())).to.deep.equal({ id: MSG_ID, timestamp: new Date(TS * 1000) });
    });

    for (const [header, key] of [['webhook-id', 'id'], ['webhook-timestamp', 'timestamp'], ['webhook-signature', 'signature']] as const) {
      it(`names ${header} when it is missing or empty`, () => {
        for (const value of [undefined, '', '  ']) {
          const e = expectCode(withHeaders({ [key]: value }), 'HOOK_HEADER_MISSING');
          expect(e.message).to.include(header);
          expect(e.details).to.deep.equal({ header });
        }
      });
    }

    for (const [name, h] of [
      ['a timestamp that is not a number ("hello")', { timestamp: 'hello' }],
      ['a fractional timestamp', { timestamp: `${TS}.5` }],
      ['a negative timestamp', { timestamp: `-${TS}` }],
      ['a timestamp with a leading zero', { timestamp: `0${TS}` }],
      ['an id containing "."', { id: 'msg.1' }],
      ['an id with a space (two webhook-id headers joined)', { id: `${MSG_ID} ${MSG_ID}` }],
      ['a signature that is not base64 of an HMAC', { signature: 'v1,dawfeoifkpqwoekfpqoekf' }],
      ['a truncated signature', { signature: SIGNATURE.slice(0, -4) }],
      ['an empty v1 entry', { signature: 'v1,' }],
      ['an entry without a version', { signature: SIGNATURE.slice(3) }],
      ['the right bytes under another version (v1a)', { signature: `v1a,${SIGNATURE.slice(3)}` }],
      ['the right bytes under an upper-case version', { signature: `V1,${SIGNATURE.slice(3)}` }],
      ['a signature for another id', { id: 'msg_other' }],
    ] as const) {
      it(`refuses ${name} as HOOK_SIGNATURE_INVALID`, () => {
        expectCode(withHeaders(h), 'HOOK_SIGNATURE_INVALID');
      });
    }

    it('refuses a timestamp 301 s in the past as stale and 301 s ahead as future', () => {
      const stale = TS - 301;
      expectCode(input({ headers: { id: MSG_ID, timestamp: String(stale), signature: signWebhook(KEY, MSG_ID, stale, PAYLOAD) } }), 'HOOK_SIGNATURE_STALE');
      const future = TS + 301;
      expectCode(input({ headers: { id: MSG_ID, timestamp: String(future), signature: signWebhook(KEY, MSG_ID, future, PAYLOAD) } }), 'HOOK_SIGNATURE_FUTURE');
    });

    it('accepts a timestamp exactly at the tolerance in either direction', () => {
      for (const ts of [TS - 300, TS + 300]) {
        expect(verifyWebhook(input({ headers: { id: MSG_ID, timestamp: String(ts), signature: signWebhook(KEY, MSG_ID, ts, PAYLOAD) } })).id).to.equal(MSG_ID);
      }
    });

    it('honours a configured tolerance and refuses a non-numeric one', () => {
      expectCode(input({ now: new Date((TS + 61) * 1000), toleranceSeconds: 60 }), 'HOOK_SIGNATURE_STALE');
      expect(failure(() => verifyWebhook(input({ toleranceSeconds: Number.NaN }))).code).to.equal('CONFIG_INVALID');
    });

    it('checks freshness before the signature, so a stale forgery reads as stale', () => {
      expectCode(input({ headers: { id: MSG_ID, timestamp: String(TS - 1000), signature: OTHER } }), 'HOOK_SIGNATURE_STALE');
    });

    it('accepts a multi-signature header with the valid entry in the middle', () => {
      const header = `${OTHER} v2,${OTHER.slice(3)} ${SIGNATURE} ${OTHER}`;
      expect(verifyWebhook(withHeaders({ signature: header })).id).to.equal(MSG_ID);
    });

    it('tolerates junk entries and doubled spaces around the valid one', () => {
      expect(verifyWebhook(withHeaders({ signature: `garbage  v1, ${SIGNATURE} v1a,xyz` })).id).to.equal(MSG_ID);
    });

    it('accepts a delivery signed with either key during rotation, and refuses a third key', () => {
      const oldKey = randomKey(1);
      const newKey = randomKey(2);
      for (const key of [oldKey, newKey]) {
        const sig = signWebhook(key, MSG_ID, TS, PAYLOAD);
        expect(verifyWebhook(input({ secrets: [oldKey, newKey], headers: { id: MSG_ID, timestamp: String(TS), signature: sig } })).id).to.equal(MSG_ID);
      }
      const foreign = signWebhook(randomKey(3), MSG_ID, TS, PAYLOAD);
      expectCode(input({ secrets: [oldKey, newKey], headers: { id: MSG_ID, timestamp: String(TS), signature: foreign } }), 'HOOK_SIGNATURE_INVALID');
    });

    it('refuses everything when no secret is configured', () => {
      expectCode(input({ secrets: [] }), 'HOOK_SIGNATURE_INVALID');
    });

    it('refuses a body changed by one byte', () => {
      const body = Buffer.from(PAYLOAD);
      body[body.length - 2] = '5'.charCodeAt(0);
      expectCode(input({ rawBody: body }), 'HOOK_SIGNATURE_INVALID');
    });

    it('signs the raw bytes, so re-serialised JSON with the same meaning fails', () => {
      expectCode(input({ rawBody: Buffer.from(JSON.stringify(JSON.parse(PAYLOAD))) }), 'HOOK_SIGNATURE_INVALID');
    });
  });

  describe('properties', () => {
    const idArb = fc.stringMatching(/^[\x21-\x2d\x2f-\x7e]{1,64}$/);
    const tsArb = fc.integer({ min: 0, max: 4_102_444_800 });
    const keyArb = fc.uint8Array({ minLength: 24, maxLength: 64 }).map((b) => Buffer.from(b));
    const bodyArb = fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b));

    function flipBit(s: Buffer, bit: number): Buffer {
      const out = Buffer.from(s);
      const i = Math.floor(bit / 8) % out.length;
      out[i] = out[i]! ^ (1 << bit % 8);
      return out;
    }

    it('verifies whatever it signed, within the tolerance', () => {
      fc.assert(fc.property(keyArb, idArb, tsArb, bodyArb, fc.integer({ min: -300, max: 300 }), (key, id, ts, body, skew) => {
        const sig = signWebhook(key, id, ts, body);
        const out = verifyWebhook({ headers: { id, timestamp: String(ts), signature: sig }, rawBody: body, secrets: [key], now: new Date((ts + skew) * 1000) });
        expect(out).to.deep.equal({ id, timestamp: new Date(ts * 1000) });
      }));
    });

    it('refuses any single-bit flip of the body, id or timestamp', () => {
      fc.assert(fc.property(
        keyArb, idArb, tsArb, bodyArb.filter((b) => b.length > 0), fc.nat(), fc.constantFrom('body', 'id', 'timestamp'),
        (key, id, ts, body, bit, where) => {
          const headers = { id, timestamp: String(ts), signature: signWebhook(key, id, ts, body) };
          let rawBody: Buffer = body;
          if (where === 'body') rawBody = flipBit(body, bit);
          else if (where === 'id') headers.id = flipBit(Buffer.from(id, 'latin1'), bit).toString('latin1');
          else headers.timestamp = flipBit(Buffer.from(headers.timestamp, 'latin1'), bit).toString('latin1');
          const e = failure(() => verifyWebhook({ headers, rawBody, secrets: [key], now: new Date(ts * 1000) }));
          // A flipped timestamp may leave the window before its signature is looked at.
          const allowed = where === 'timestamp'
            ? ['HOOK_SIGNATURE_INVALID', 'HOOK_SIGNATURE_STALE', 'HOOK_SIGNATURE_FUTURE', 'HOOK_HEADER_MISSING']
            : ['HOOK_SIGNATURE_INVALID', 'HOOK_HEADER_MISSING'];
          expect(allowed).to.include(e.code);
        },
      ), { numRuns: 500 });
    });

    it('answers arbitrary headers only with a HOOK_* WogateError', () => {
      const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[0-9.\- ]{0,20}$/));
      const entry = fc.oneof(text, fc.base64String().map((s) => `v1,${s}`), fc.base64String({ minLength: 44, maxLength: 44 }).map((s) => `v1,${s}`));
      const sigArb = fc.oneof(text, fc.array(entry, { maxLength: 6 }).map((a) => a.join(' ')));
      const hooks = ['HOOK_HEADER_MISSING', 'HOOK_SIGNATURE_INVALID', 'HOOK_SIGNATURE_STALE', 'HOOK_SIGNATURE_FUTURE'];
      fc.assert(fc.property(
        fc.record({ id: fc.option(text, { nil: undefined }), timestamp: fc.option(fc.oneof(text, tsArb.map(String)), { nil: undefined }), signature: fc.option(sigArb, { nil: undefined }) }),
        bodyArb, tsArb,
        (headers, rawBody, now) => {
          const e = failure(() => verifyWebhook({ headers, rawBody, secrets: [KEY], now: new Date(now * 1000) }));
          expect(hooks).to.include(e.code);
        },
      ), { numRuns: 1000 });
    });
  });
});
