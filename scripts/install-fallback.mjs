// Runs from `npm install` only when `node-gyp-build` failed: no prebuild fits this platform
// and compiling from source did not work either (no compiler, no Python, Windows). That must
// not fail the install, because the package still works through its pure-JS backend.
console.warn(
  'native-tls-listener: no prebuilt native acceptor fits this platform and building it from source failed; ' +
    "the pure-JS backend will be used (backend: 'native' will throw ERR_NATIVE_UNAVAILABLE).",
);
