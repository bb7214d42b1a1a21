// Run-time checks for every message that crosses a process boundary, by name. Each one comes from
// the schema its type is inferred from (src/protocol/events.ts, rpc.ts, errors.ts), built with the
// kit in kit.ts; this module only gathers them. A failure lists every bad field by its path.
import { Notifications, Requests } from './rpc';

export { expectValid, ProtocolError, type Validation, type Validator } from './kit';
export { LIMITS } from './limits';
export { validateDevice, validateSolveEvent, validateSolveMetrics, validateSolveResult } from './events';
export { validateRpcErrorData } from './errors';
export { validateNoParams } from './rpc';

export const validateInitializeParams = Requests.initialize.params;
export const validateInitializeResult = Requests.initialize.result;
export const validateLoadTeamParams = Requests.loadTeam.params;
export const validateLoadTeamResult = Requests.loadTeam.result;
export const validateSolveParams = Requests.solve.params;
export const validateCancelParams = Requests.cancel.params;
export const validateCancelResult = Requests.cancel.result;
export const validatePingResult = Requests.ping.result;
export const validateSolveEventNotification = Notifications.solveEvent.params;
export const validateLogNotification = Notifications.log.params;
