/** Every failure wogate reports carries a stable code that tests, logs and HTTP responses use. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_SECRET_UNRESOLVED'
  | 'POLICY_INVALID'
  | 'REGISTER_INVALID'
  | 'HOOK_SOURCE_UNKNOWN'
  | 'HOOK_HEADER_MISSING'
  | 'HOOK_SIGNATURE_INVALID'
  | 'HOOK_SIGNATURE_STALE'
  | 'HOOK_SIGNATURE_FUTURE'
  | 'HOOK_REPLAY'
  | 'HOOK_BODY_TOO_LARGE'
  | 'HOOK_BODY_INVALID'
  | 'HOOK_MAPPING_FAILED'
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_FORBIDDEN'
  | 'AUTH_NO_PERSON'
  | 'AUTH_UNAVAILABLE'
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'TARGET_UNKNOWN'
  | 'TARGET_CALL_FAILED'
  | 'TARGET_RESPONSE_INVALID'
  | 'SOURCE_CALL_FAILED'
  | 'SOURCE_RESPONSE_INVALID'
  | 'STORE_CONFLICT'
  | 'AUDIT_CHAIN_BROKEN'
  | 'AUDIT_KEY_INVALID'
  | 'INTERNAL';

export class WogateError extends Error {
  override readonly name = 'WogateError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function isWogateError(e: unknown, code?: ErrorCode): e is WogateError {
  return e instanceof WogateError && (code === undefined || e.code === code);
}
