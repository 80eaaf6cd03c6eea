import { ErrorCode, FederationError, toFederationError } from '../errors.js';

/**
 * The error a function throws so that Lambda reports it as a function error: `errorType` is the
 * typed error's class name (`ValidationError`, `NotFoundError`, ...) and `errorMessage` is
 * `"<CODE>: <message>"`. Unknown errors become `INTERNAL` without their message.
 */
export function toInvokeError(error: unknown, context: string): Error {
  const typed = asFederationError(error, context);
  const thrown = new Error(`${typed.code}: ${typed.message}`);
  thrown.name = typed.name === 'Error' ? 'FederationError' : typed.name;
  return thrown;
}

/**
 * The typed error for a caller: FederationErrors as they are, AWS SDK errors (they carry `$metadata`)
 * through `toFederationError`, anything else (a bug) as INTERNAL without its message.
 */
export function asFederationError(error: unknown, context: string): FederationError {
  if (error instanceof FederationError) return error;
  if (typeof error === 'object' && error !== null && '$metadata' in error)
    return toFederationError(error, context);
  return new FederationError(ErrorCode.INTERNAL, `${context}: internal error`, { cause: error });
}

const CODES = new Set<string>(Object.values(ErrorCode));

/**
 * Turns a Lambda function-error payload (`{ errorType, errorMessage }`, what `Invoke` returns with
 * `FunctionError` set) back into `{ code, message }`. A message without a known `<CODE>: ` prefix (a
 * runtime crash, a timeout) becomes `INTERNAL` with a generic message: nothing internal leaks.
 */
export function errorFromInvokePayload(payload: unknown): { code: ErrorCode; message: string } {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as {
    errorType?: unknown;
    errorMessage?: unknown;
  };
  const text = typeof p.errorMessage === 'string' ? p.errorMessage : '';
  const match = /^([A-Z_]+): ([\s\S]*)$/.exec(text);
  if (match?.[1] && match[2] !== undefined && CODES.has(match[1]) && match[1] !== ErrorCode.INTERNAL) {
    return { code: match[1] as ErrorCode, message: match[2] };
  }
  const type =
    typeof p.errorType === 'string' && /^[A-Za-z.]{1,64}$/.test(p.errorType) ? p.errorType : 'unknown';
  return { code: ErrorCode.INTERNAL, message: `The subscriptions function failed (${type})` };
}

/** The same, as a FederationError to rethrow. */
export function federationErrorFromInvokePayload(payload: unknown): FederationError {
  const { code, message } = errorFromInvokePayload(payload);
  return new FederationError(code, message);
}
