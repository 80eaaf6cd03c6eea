/**
 * Typed errors with stable codes. Every error the agent reports to a caller (Lambda result, relay reply,
 * CLI) is one of these; anything else is mapped to `INTERNAL` without leaking its message.
 */
export const ErrorCode = {
  VALIDATION: 'VALIDATION',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  UNAUTHORIZED: 'UNAUTHORIZED',
  AWS_THROTTLED: 'AWS_THROTTLED',
  AWS_ACCESS_DENIED: 'AWS_ACCESS_DENIED',
  AWS_ERROR: 'AWS_ERROR',
  CONFIG: 'CONFIG',
  BUSY: 'BUSY',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class: a stable `code`, a message a person can act on, optional structured `details`. */
export class FederationError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  /** The shape sent to callers: code and message only, never the cause chain. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

export class ValidationError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.VALIDATION, message, options);
  }
}

export class NotFoundError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.NOT_FOUND, message, options);
  }
}

export class ConflictError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.CONFLICT, message, options);
  }
}

export class UnauthorizedError extends FederationError {
  constructor(message = 'Unauthorized') {
    super(ErrorCode.UNAUTHORIZED, message);
  }
}

export class ConfigError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.CONFIG, message, options);
  }
}

/** Another run or request holds the resource (lease, in-progress subscription). Safe to retry later. */
export class BusyError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.BUSY, message, options);
  }
}

export class AwsThrottledError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.AWS_THROTTLED, message, options);
  }
}

export class AwsAccessDeniedError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.AWS_ACCESS_DENIED, message, options);
  }
}

export class AwsError extends FederationError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(ErrorCode.AWS_ERROR, message, options);
  }
}

const THROTTLE_NAMES = new Set([
  'TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'LimitExceededException',
]);
const ACCESS_DENIED_NAMES = new Set(['AccessDeniedException', 'UnauthorizedException', 'AccessDenied']);

/** The error name an AWS SDK v3 error carries (`name`, or `Code` from the raw response). */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; Code?: unknown };
  if (typeof e.name === 'string' && e.name !== 'Error') return e.name;
  if (typeof e.Code === 'string') return e.Code;
  return undefined;
}

/** HTTP status of an AWS SDK v3 error, when it has one. */
export function awsHttpStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isThrottle(error: unknown): boolean {
  const name = awsErrorName(error);
  return (name !== undefined && THROTTLE_NAMES.has(name)) || awsHttpStatus(error) === 429;
}

export function isAccessDenied(error: unknown): boolean {
  const name = awsErrorName(error);
  return (name !== undefined && ACCESS_DENIED_NAMES.has(name)) || awsHttpStatus(error) === 403;
}

export function isNotFound(error: unknown): boolean {
  return awsErrorName(error) === 'NotFoundException' || awsHttpStatus(error) === 404;
}

/**
 * True for an error the AWS SDK threw: it carries the SDK's `$metadata` (a service answer, or a
 * network failure the SDK wrapped). Anything else is a bug or a typed error, never an AWS error.
 */
export function isAwsSdkError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && '$metadata' in error;
}

/**
 * The one classification of an error for a caller (Lambda function error, relay reply, log line):
 * FederationErrors as they are; AWS SDK errors (they carry `$metadata`) as AWS_THROTTLED,
 * AWS_ACCESS_DENIED or AWS_ERROR; anything else (a bug) as INTERNAL without its message.
 */
export function toFederationError(error: unknown, context: string): FederationError {
  if (error instanceof FederationError) return error;
  if (!isAwsSdkError(error)) {
    return new FederationError(ErrorCode.INTERNAL, `${context}: internal error`, { cause: error });
  }
  const name = awsErrorName(error) ?? 'UnknownError';
  if (isThrottle(error))
    return new AwsThrottledError(`${context}: throttled by AWS (${name}); retry later`, { cause: error });
  if (isAccessDenied(error))
    return new AwsAccessDeniedError(`${context}: access denied (${name}); check the role's policy`, {
      cause: error,
    });
  return new AwsError(`${context}: AWS call failed (${name})`, { cause: error });
}

/** The `{ code, message }` of a FAILED relay reply or a log line's `error` field: never a cause chain. */
export function errorOutcome(error: unknown, context: string): { code: ErrorCode; message: string } {
  const typed = toFederationError(error, context);
  return { code: typed.code, message: typed.message };
}

// ---------------------------------------------------------------------------------------------------
// Lambda function errors: how a typed error crosses an `Invoke` and comes back typed.

/**
 * The error a function throws so that Lambda reports it as a function error: `errorType` is the
 * typed error's class name (`ValidationError`, `NotFoundError`, ...) and `errorMessage` is
 * `"<CODE>: <message>"`. Unknown errors become `INTERNAL` without their message.
 */
export function toInvokeError(error: unknown, context: string): Error {
  const typed = toFederationError(error, context);
  const thrown = new Error(`${typed.code}: ${typed.message}`);
  thrown.name = typed.name === 'Error' ? 'FederationError' : typed.name;
  return thrown;
}

const CODES = new Set<string>(Object.values(ErrorCode));

/**
 * Turns a Lambda function-error payload (`{ errorType, errorMessage }`, what `Invoke` returns with
 * `FunctionError` set, see {@link toInvokeError}) back into `{ code, message }`. A message without a
 * known `<CODE>: ` prefix (a runtime crash, a timeout) becomes `INTERNAL` with a generic message
 * naming the function: nothing internal leaks.
 */
export function errorFromInvokePayload(
  payload: unknown,
  functionName = 'subscriptions',
): { code: ErrorCode; message: string } {
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
  return { code: ErrorCode.INTERNAL, message: `The ${functionName} function failed (${type})` };
}
