import { Logger } from '@aws-lambda-powertools/logger';

/**
 * One structured JSON logger per function, set up the same way everywhere (level from
 * `POWERTOOLS_LOG_LEVEL`, read by Powertools itself). Never pass an API key value or a token to it:
 * they are not redacted, they are simply never handed to the logger.
 */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

/** middy middleware adding the Lambda context (request id, function name, cold start) to every log line. */
export { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
export type { Logger };
