// How failures cross the process boundary. A user-fixable engine error (UserError in
// src/engine/api.ts) carries one of USER_ERROR_CODES; the runtime puts it in the JSON-RPC error's
// data, the supervisor turns it back into a UserError, and the panel picks its fix buttons by it
// (src/extension/errors.ts maps every code, checked by the compiler).
import { arrayOf, object, oneOf, str, validator, type Infer } from './kit';

export const USER_ERROR_CODES = [
  'bad-input',
  'model-missing',
  'model-invalid',
  'unsupported',
  'out-of-memory',
  'device-unavailable',
  'link-mismatch',
  'preset-invalid',
] as const;
export type UserErrorCode = (typeof USER_ERROR_CODES)[number];

export function isUserErrorCode(value: unknown): value is UserErrorCode {
  return typeof value === 'string' && (USER_ERROR_CODES as readonly string[]).includes(value);
}

/** JSON-RPC error codes the runtime answers with; `data` is an RpcErrorData. */
export const RpcErrorCodes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** A user-fixable problem (the engine's UserError). */
  userError: -32001,
  /** Any other engine failure. */
  engineError: -32002,
  cancelled: -32800,
} as const;

const text = str({ max: 10_000_000 });

export const rpcErrorData = object(
  { kind: oneOf(['cancelled', 'user', 'engine', 'invalid']) },
  {
    /** UserError code (kind 'user'). */
    code: oneOf(USER_ERROR_CODES),
    /** What the user can do about it (kind 'user'). */
    action: text,
    /** The fields that failed validation (kind 'invalid'). */
    issues: arrayOf(text, 1000),
  },
);
export type RpcErrorData = Infer<typeof rpcErrorData>;

export const validateRpcErrorData = validator(rpcErrorData, 'error.data');
