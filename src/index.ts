export { createLocalTCPListener, TCPListener } from './tcp_listener.js';
export type { TCPConnectionInfo, TCPListenerOptions } from './tcp_listener.js';
export { Listener, adoptDescriptor } from './listener.js';
// Types the events of every Listener (declaration merging), for importers of the package too.
export type { ListenerEventHandler, ListenerEventName, ListenerEvents } from './listener_events.js';
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
export { nodeInternals } from './node_internals.js';
export type { NodeInternalName, NodeInternalUse } from './node_internals.js';
export { ErrorCodes } from './errors.js';
export type { CodedError, SystemError } from './errors.js';
export type { BackendKind } from './accept/backend.js';
export { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from './metrics.js';
export type { AuditReport } from './audit.js';
export { createListener, TLSListener } from './tls/tls_listener.js';
export type { ConnectionHandler, CredentialUpdate, HttpTarget, ListenerOptions, RequestListener, TlsListenerDependencies } from './tls/tls_listener.js';
export type { ConnectionInfo } from './tls/tls_setup.js';
export { CREDENTIAL_LIMITS, loadServerCredential, loadFingerprint, readServerCredential, readFingerprint } from './tls/credentials.js';
export type { ServerCredential, CredentialFiles } from './tls/credentials.js';
export type { ClientCertRejectedError, ClientChainRejectReason } from './tls/client_certificate.js';
export { WorkersListener } from './workers/worker_listener.js';
export type { WorkerEvent, WorkersListenerStats, WorkerStats } from './workers/worker_listener.js';
export type { WorkersOptions } from './workers/worker_options.js';
export type { ProxiedInfo, ProxyConnectionInfo } from './proxy/proxy_setup.js';
export type { ProxyProtocolOptions } from './proxy/proxy_options.js';
export type { ProxyProtocolMode } from './proxy/proxy_header_accumulator.js';
export type { ProxySslInfo, ProxyTlv, ProxyTlvs } from './proxy/proxy_header.js';
export { LISTEN_FDS_START, systemdListenFds } from './systemd/listen_fds.js';
export type { ActivatedSocket, ListenFdsOptions } from './systemd/listen_fds.js';
export { systemdNotify } from './systemd/notify.js';
export { UpgradeControl, drainListener, takeOver, TakeOver } from './upgrade/index.js';
export type { UpgradeControlOptions, TakeOverOptions } from './upgrade/index.js';
