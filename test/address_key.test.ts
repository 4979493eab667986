// maxConnectionsPerAddress's one rule (which key an address counts under) in both languages,
// tested against the same cases (test/fixtures/address_keys.json), and the TS table's bound.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { perAddressKey } from '../src/accept/address_key.js';
import { ADDRESS_TABLE_MAX, AddressCounts, addressTableCapacity } from '../src/accept/address_counts.js';
import { loadNativeBinding } from '../src/native/load.js';
import { repoRoot } from './support/paths.js';

interface KeyCase {
  address: string;
  prefix: number;
  key: string | null;
}

const { cases } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/address_keys.json'), 'utf8')) as { cases: KeyCase[] };

describe('per-address keys: one rule, the same cases in TS and C++', () => {
  it('TS (src/accept/address_key.ts): every case', () => {
    const wrong = cases.filter((c) => perAddressKey(c.address, c.prefix) !== c.key).map((c) => ({ ...c, got: perAddressKey(c.address, c.prefix) }));
    expect(wrong).to.deep.equal([]);
  });

  it('C++ (native/address_key.h, through the addon): every case', function () {
    const binding = loadNativeBinding().binding;
    if (binding === null) this.skip();
    const wrong = cases.filter((c) => binding.addressKey(c.address, c.prefix) !== c.key).map((c) => ({ ...c, got: binding.addressKey(c.address, c.prefix) }));
    expect(wrong).to.deep.equal([]);
  });

  it('TS: a socket without an address (a unix socket peer) is not limited; the default prefix is /64', () => {
    expect(perAddressKey(undefined)).to.equal(null);
    expect(perAddressKey('2001:db8:1:2:3:4:5:6')).to.equal('2001:db8:1:2::');
  });
});

describe('the TS per-address table: bounded, and closed when full', () => {
  it('a new key is refused once the table holds `capacity` keys; a known one is still counted; a freed key makes room', () => {
    const table = new AddressCounts(2, 3);
    const releases = ['a', 'b', 'c'].map((key) => table.admit(key));
    expect(releases.every((r) => typeof r === 'function')).to.equal(true);
    expect(table.admit('d')).to.equal('addressTableFull');
    const second = table.admit('a');
    expect(second).to.be.a('function');
    expect(table.admit('a')).to.equal('maxConnectionsPerAddress');
    (releases[1] as () => void)();
    (releases[1] as () => void)(); // twice: counted out once
    expect(table.inUse).to.equal(2);
    expect(table.admit('d')).to.be.a('function');
    expect(table.admit('e')).to.equal('addressTableFull');
  });

  it('its size is maxConnections up to the documented cap', () => {
    expect(ADDRESS_TABLE_MAX).to.equal(65_536);
    expect(addressTableCapacity(undefined)).to.equal(65_536);
    expect(addressTableCapacity(10)).to.equal(10);
    expect(addressTableCapacity(1_000_000)).to.equal(65_536);
  });
});
