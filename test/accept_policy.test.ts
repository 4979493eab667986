// The errno table the js backend applies to accept() errors Node reports: the same table as
// the native acceptor's (native/accept_errors.cc), which test/accept_faults.test.ts drives
// errno by errno through real listeners.
import { expect } from 'chai';
import { classifyAcceptError } from '../src/accept/accept_policy.js';
import { ORIGINAL_RETRY_SET } from './support/fault_shim.js';

function classifyAll(codes: readonly string[]): Record<string, string> {
  return Object.fromEntries(codes.map((code) => [code, classifyAcceptError(code)]));
}

function all(codes: readonly string[], action: string): Record<string, string> {
  return Object.fromEntries(codes.map((code) => [code, action]));
}

describe('the accept() errno policy by name (js backend): the native acceptor\'s table', () => {
  it('retries every error of one pending connection: the original set and the rest of accept(2)', () => {
    const original = ORIGINAL_RETRY_SET;
    const beyond = ['EPERM', 'ETIMEDOUT', 'ENOSR', 'ESOCKTNOSUPPORT', 'EPROTONOSUPPORT'];
    expect(classifyAll([...original, ...beyond])).to.deep.equal(all([...original, ...beyond], 'retry'));
  });

  it('pauses when out of descriptors or kernel memory', () => {
    const exhausted = ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'];
    expect(classifyAll(exhausted)).to.deep.equal(all(exhausted, 'pause'));
  });

  it('is fatal when the listening socket itself is broken, and for errnos accept(2) does not list', () => {
    const broken = ['EBADF', 'EINVAL', 'ENOTSOCK', 'EFAULT', 'EACCES'];
    expect(classifyAll(broken)).to.deep.equal(all(broken, 'fatal'));
  });
});
