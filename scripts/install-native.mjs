// Runs from `npm install`: builds the addon from source. A failed build must not fail the
// install, because the package still works through its pure-JS backend; say so once, clearly.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild'], { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    'native-tls-listener: the native acceptor could not be built; ' +
      "the pure-JS backend will be used (backend: 'native' will throw ERR_NATIVE_UNAVAILABLE).",
  );
}
