// An upgrade without dropping a connection: the running process hands its listening sockets
// to its successor over a Unix socket (SCM_RIGHTS) and drains.
export { UpgradeControl, drainListener } from './upgrade_control.js';
export type { UpgradeControlOptions } from './upgrade_control.js';
export { takeOver, TakeOver } from './take_over.js';
export type { TakeOverOptions } from './take_over.js';
