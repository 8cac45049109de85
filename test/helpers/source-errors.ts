import { expect } from 'chai';
import { SourceError } from '../../src/sources/source.js';

/** The SourceError `p` fails with; fails the test when `p` succeeds or fails otherwise. */
export async function sourceFailure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    return e as SourceError;
  }
  return expect.fail('expected the call to fail with a SourceError');
}
