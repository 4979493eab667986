export { createLocalTCPListener, TCPListener } from './tcp_listener.js';
export type { TCPConnectionInfo, TCPListenerOptions } from './tcp_listener.js';
export { Listener, adoptDescriptor } from './listener.js';
export type {
  BaseListenerOptions,
  CloseOptions,
  DescriptorAdopter,
  Handler,
  ListenerDependencies,
  ListenerStats,
  SetupFailureInfo,
} from './listener.js';
export { nativeAvailable } from './backend_choice.js';
export { ErrorCodes } from './errors.js';
export type { CodedError, SystemError } from './errors.js';
export type { BackendKind } from './accept/backend.js';
