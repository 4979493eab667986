// Writes seed inputs for the ClientHello parser's fuzz target (native/fuzz/) into the directory
// given: real hellos from Node's TLS client (with and without SNI and ALPN, TLS 1.2 and 1.3),
// the same cut into small records, behind an empty record, and an SSLv2-format hello.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

const dir = process.argv[2];
if (!dir) throw new Error('usage: hello-fuzz-seeds.mjs DIR');
fs.mkdirSync(dir, { recursive: true });

/** The first record a tls.connect() client with `options` sends. */
async function capture(options) {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hello = new Promise((resolve) => {
    server.once('connection', (socket) => {
      let held = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        held = Buffer.concat([held, chunk]);
        if (held.length >= 5 && held.length >= 5 + held.readUInt16BE(3)) {
          resolve(held.subarray(0, 5 + held.readUInt16BE(3)));
          socket.destroy();
        }
      });
      socket.on('error', () => undefined);
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port: server.address().port, rejectUnauthorized: false, ...options });
  client.on('error', () => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

/** The handshake message of a one-record hello, in records of `size` bytes. */
function recut(record, size) {
  const message = record.subarray(5);
  const parts = [];
  for (let at = 0; at < message.length; at += size) {
    const fragment = message.subarray(at, at + size);
    parts.push(Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(parts);
}

const seeds = {
  plain: await capture({}),
  sniAlpn: await capture({ servername: 'sni.example', ALPNProtocols: ['h2', 'http/1.1'] }),
  tls12: await capture({ servername: 'a.example', maxVersion: 'TLSv1.2', ALPNProtocols: ['x'] }),
};
seeds.fragmented = recut(seeds.sniAlpn, 97);
seeds.tiny = recut(seeds.sniAlpn, 3);
seeds.emptyFirst = Buffer.concat([Buffer.from([22, 3, 1, 0, 0]), seeds.sniAlpn]);
seeds.sslv2 = Buffer.from('802e0103010015000000100000350000' + '2f00000a0000ff' + '01'.repeat(16) + '00000000', 'hex');
for (const [name, bytes] of Object.entries(seeds)) fs.writeFileSync(path.join(dir, name), bytes);
console.log(`${Object.keys(seeds).length} seeds in ${dir}`);
