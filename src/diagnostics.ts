// What the listener tells observers: diagnostics_channel channels for APM tools, and
// NODE_DEBUG=native-tls-listener logging. Publishing costs nothing without subscribers.
import diagnosticsChannel from 'node:diagnostics_channel';
import util from 'node:util';

export const channels = {
  accept: diagnosticsChannel.channel('native-tls-listener:accept'),
  acceptRetry: diagnosticsChannel.channel('native-tls-listener:accept-retry'),
  acceptPause: diagnosticsChannel.channel('native-tls-listener:accept-pause'),
  handshakeDone: diagnosticsChannel.channel('native-tls-listener:handshake-done'),
  handshakeFailed: diagnosticsChannel.channel('native-tls-listener:handshake-failed'),
  connectionClose: diagnosticsChannel.channel('native-tls-listener:connection-close'),
  listenerClose: diagnosticsChannel.channel('native-tls-listener:listener-close'),
} as const;

export const debug = util.debuglog('native-tls-listener');
