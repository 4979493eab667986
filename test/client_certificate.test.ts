import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  MAX_CLIENT_CHAIN_LENGTH,
  createClientCertRejectedError,
  validateClientChain,
} from '../src/tls/client_certificate.js';
import type {
  ClientChainRejectReason,
  ClientChainRejection,
  ClientChainVerdict,
} from '../src/tls/client_certificate.js';
import { createTestPki, writePkiFiles } from './support/pki.js';
import type { ClientChain, PkiFiles } from './support/pki.js';

const pki = await createTestPki();

function parse(chain: ClientChain): X509Certificate[] {
  return chain.certs.map((pem) => new X509Certificate(pem));
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no element at ${index}`);
  return item;
}

function expectRejected(verdict: ClientChainVerdict, reason: ClientChainRejectReason): ClientChainRejection {
  if (verdict.accepted) throw new Error(`expected a ${reason} rejection, but the chain was accepted`);
  expect(verdict.reason, verdict.detail).to.equal(reason);
  return verdict;
}

describe('validateClientChain: a client that sends no certificate', () => {
  it('is accepted', () => {
    expect(validateClientChain([])).to.deep.equal({ accepted: true });
  });
});

describe('validateClientChain: valid chains of one to four certificates', () => {
  const chains = [
    ['a self-signed certificate', pki.clientChain1, 1],
    ['[leaf, ca]', pki.clientChain2, 2],
    ['[leaf, id, ca]', pki.clientChain3, 3],
    ['[leaf, id, net, ca]', pki.clientChain4, 4],
  ] as const;
  for (const [shape, chain, length] of chains) {
    it(`accepts ${shape}`, () => {
      const certs = parse(chain);
      expect(certs).to.have.length(length);
      expect(validateClientChain(certs)).to.deep.equal({ accepted: true });
    });
  }

  it('allows at most four certificates', () => {
    expect(MAX_CLIENT_CHAIN_LENGTH).to.equal(4);
  });
});

describe('validateClientChain: chains longer than four certificates', () => {
  it('rejects an otherwise valid chain of five as chain_too_long', () => {
    const certs = parse(pki.clientChain5);
    expect(certs).to.have.length(5);
    const verdict = expectRejected(validateClientChain(certs), 'chain_too_long');
    expect(verdict.detail).to.include('5');
  });

  it('judges the length before anything else about the chain', () => {
    const expired = at(parse(pki.expiredClient), 0);
    const verdict = validateClientChain([expired, expired, expired, expired, expired, expired]);
    expectRejected(verdict, 'chain_too_long');
  });
});

describe('validateClientChain: validity period', () => {
  it('rejects a leaf past its notAfter as expired', () => {
    const verdict = expectRejected(validateClientChain(parse(pki.expiredClient)), 'expired');
    expect(verdict.detail).to.include('expired-client');
  });

  it('rejects a leaf before its notBefore as expired', () => {
    const verdict = expectRejected(validateClientChain(parse(pki.notYetValidClient)), 'expired');
    expect(verdict.detail).to.include('not valid before');
  });

  it('checks every certificate of the chain against the given time', () => {
    const certs = parse(pki.clientChain3);
    const inTwoYears = new Date(Date.now() + 2 * 365 * 24 * 60 * 60 * 1000);
    expectRejected(validateClientChain(certs, inTwoYears), 'expired');
  });

  it('treats both bounds as inclusive, to the second', () => {
    const certs = parse(pki.clientChain2);
    const latestStart = Math.max(...certs.map((c) => new Date(c.validFrom).getTime()));
    const earliestEnd = Math.min(...certs.map((c) => new Date(c.validTo).getTime()));
    expect(validateClientChain(certs, new Date(latestStart))).to.deep.equal({ accepted: true });
    expect(validateClientChain(certs, new Date(earliestEnd))).to.deep.equal({ accepted: true });
    expectRejected(validateClientChain(certs, new Date(latestStart - 1000)), 'expired');
    expectRejected(validateClientChain(certs, new Date(earliestEnd + 1000)), 'expired');
  });
});

describe('validateClientChain: a certificate not signed by the next one', () => {
  it('rejects a leaf that names the CA but was signed by another key as unknown_ca', () => {
    const certs = parse(pki.unknownCaClient);
    // The names and key identifiers line up, so only the signature betrays it.
    expect(at(certs, 0).checkIssued(at(certs, 1))).to.equal(true);
    const verdict = expectRejected(validateClientChain(certs), 'unknown_ca');
    expect(verdict.detail).to.include('signature');
  });

  it('rejects a chain sent root first as unknown_ca', () => {
    expectRejected(validateClientChain(parse(pki.clientChain2).reverse()), 'unknown_ca');
  });
});

describe('validateClientChain: a chain rooted in a foreign CA', () => {
  it('is accepted when complete, because the anchor is whatever the client sent last', () => {
    expect(validateClientChain(parse(pki.foreignClient))).to.deep.equal({ accepted: true });
  });

  it('rejects a foreign leaf presented with our CA as unknown_ca', () => {
    const foreignLeaf = at(parse(pki.foreignClient), 0);
    const verdict = expectRejected(validateClientChain([foreignLeaf, new X509Certificate(pki.ca.cert)]), 'unknown_ca');
    expect(verdict.detail).to.include('not issued by');
  });

  it('rejects one of our leaves presented with the foreign CA as unknown_ca', () => {
    const leaf = at(parse(pki.clientChain2), 0);
    const otherCa = new X509Certificate(pki.otherCa.cert);
    expectRejected(validateClientChain([leaf, otherCa]), 'unknown_ca');
  });
});

describe('validateClientChain: an anchor that is not self-signed', () => {
  it('rejects [leaf, intermediate] as unknown_ca', () => {
    const [leaf, intermediate] = parse(pki.clientChain3);
    if (leaf === undefined || intermediate === undefined) throw new Error('short fixture');
    // The link itself is sound; only the anchor is wrong.
    expect(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey)).to.equal(true);
    const verdict = expectRejected(validateClientChain([leaf, intermediate]), 'unknown_ca');
    expect(verdict.detail).to.include('not self-signed');
  });

  it('rejects a lone CA-issued leaf as unknown_ca', () => {
    expectRejected(validateClientChain([at(parse(pki.clientChain2), 0)]), 'unknown_ca');
  });

  it('rejects an anchor whose signature verifies but whose issuer is someone else', () => {
    // Signing with its own key is not enough: the anchor must also name itself.
    class NamesAnotherIssuer extends X509Certificate {
      override readonly issuer = 'CN=someone else';
    }
    const anchor = new NamesAnotherIssuer(at(pki.clientChain1.certs, 0));
    expect(anchor.verify(anchor.publicKey)).to.equal(true);
    expectRejected(validateClientChain([anchor]), 'unknown_ca');
  });
});

describe('validateClientChain: a certificate it cannot read', () => {
  // Stands in for whatever OpenSSL renders that V8 cannot parse as a date.
  class UnreadableValidity extends X509Certificate {
    override readonly validFrom = 'not a date';
  }

  it('rejects it as other, saying what was unreadable', () => {
    const verdict = expectRejected(
      validateClientChain([new UnreadableValidity(at(pki.clientChain1.certs, 0))]),
      'other',
    );
    expect(verdict.detail).to.include('unreadable validity period');
  });
});

describe('createClientCertRejectedError', () => {
  it('carries the code and the reason, and says why in its message', () => {
    const verdict = expectRejected(validateClientChain(parse(pki.expiredClient)), 'expired');
    const error = createClientCertRejectedError(verdict);
    expect(error).to.be.instanceOf(Error);
    expect(error.code).to.equal('ERR_CLIENT_CERT_REJECTED');
    expect(error.reason).to.equal('expired');
    expect(error.message).to.include('expired').and.to.include(verdict.detail);
  });

  it('keeps each rejection reason distinct', () => {
    const verdict = expectRejected(validateClientChain(parse(pki.clientChain5)), 'chain_too_long');
    expect(createClientCertRejectedError(verdict).reason).to.equal('chain_too_long');
  });
});

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runOpenssl(args: readonly string[]): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('test PKI', () => {
  let dir = '';
  let files: PkiFiles;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'native-tls-listener-pki-'));
    files = await writePkiFiles(dir);
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('issues server certificates that openssl verify accepts against the CA', async () => {
    const result = await runOpenssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      files.ca.cert,
      files.server.cert,
      files.sni.cert,
      files.rsaServer.cert,
    ]);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.include(`${files.server.cert}: OK`);
  });

  it('issues a server certificate that openssl verify rejects against an unrelated CA', async () => {
    const result = await runOpenssl(['verify', '-CAfile', files.otherCa.cert, files.server.cert]);
    expect(result.code).to.not.equal(0);
  });

  it('names server.test, localhost and 127.0.0.1 in the server certificate', () => {
    const server = new X509Certificate(pki.server.cert);
    expect(server.checkHost('server.test')).to.equal('server.test');
    expect(server.checkHost('localhost')).to.equal('localhost');
    expect(server.checkIP('127.0.0.1')).to.equal('127.0.0.1');
  });

  it('makes the SNI certificate distinguishable from the default one', () => {
    const server = new X509Certificate(pki.server.cert);
    const sni = new X509Certificate(pki.sni.cert);
    expect(sni.checkHost('sni.test')).to.equal('sni.test');
    expect(sni.serialNumber).to.not.equal(server.serialNumber);
    expect(sni.subject).to.not.equal(server.subject);
  });

  it('pairs every certificate with its own PKCS#8 key', () => {
    const pairs = [pki.ca, pki.server, pki.sni, pki.rsaServer, pki.otherCa].map((p) => [p.cert, p.key] as const);
    const chains = [
      pki.foreignClient,
      pki.clientChain1,
      pki.clientChain2,
      pki.clientChain3,
      pki.clientChain4,
      pki.clientChain5,
      pki.expiredClient,
      pki.notYetValidClient,
      pki.unknownCaClient,
    ].map((c) => [at(c.certs, 0), c.key] as const);
    for (const [cert, key] of [...pairs, ...chains]) {
      expect(key).to.match(/^-----BEGIN PRIVATE KEY-----/);
      expect(new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))).to.equal(true);
    }
  });

  it('gives the RSA server certificate a 2048-bit RSA key', () => {
    const { publicKey } = new X509Certificate(pki.rsaServer.cert);
    expect(publicKey.asymmetricKeyType).to.equal('rsa');
    expect(publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
  });

  it('is generated once per run', async () => {
    expect(await createTestPki()).to.equal(pki);
  });
});
