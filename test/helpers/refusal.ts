import { expect } from 'chai';
import { WogateError } from '../../src/domain/index.js';

/** The message of the CONFIG_INVALID WogateError `f` throws; fails the test when it throws nothing, or anything else. */
export function configRefusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    expect((e as WogateError).code).to.equal('CONFIG_INVALID');
    return (e as WogateError).message;
  }
  throw new Error('expected CONFIG_INVALID, and nothing was thrown');
}
