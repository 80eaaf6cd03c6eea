/**
 * relay-authorizer: the `$connect` REQUEST authorizer of the relay. Checks `Authorization: Bearer
 * <token>` against the relay token in Secrets Manager (constant-time, cached briefly so a rotation
 * takes effect). A missing header never reaches it (API Gateway answers 401 for the missing identity
 * source); a header that is not a Bearer credential, or a wrong token, gets a Deny policy (403) — an
 * answer, not a function error, so a client's mistake never trips the function's error alarm. Neither
 * reaches `$connect`, so no connection record is written.
 */
import {
  type AuthorizerResult,
  authorizerPolicy,
  functionComposition,
  headerValue,
  injectLambdaContext,
  type Logger,
  secretLoader,
  TokenVerifier,
} from '@apigw-federation/core';
import middy from '@middy/core';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

export interface RelayAuthorizerDeps {
  readonly verifier: TokenVerifier;
  readonly logger?: Pick<Logger, 'info' | 'warn'>;
}

/** The handler logic with its dependencies injected (tests, the local runtime). */
export function createRelayAuthorizerHandler(deps: RelayAuthorizerDeps) {
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<AuthorizerResult> => {
    // Defensive: whatever the event is, the answer is Allow or Deny — never a TypeError.
    const check = await deps.verifier.check(headerValue(event?.headers, 'Authorization'));
    const connectionId = event?.requestContext?.connectionId;
    const methodArn = typeof event?.methodArn === 'string' ? event.methodArn : '';
    if (check === 'missing') {
      deps.logger?.info('Connection refused: no bearer token', { connectionId });
      // Throwing 'Unauthorized' (401) would be a function error: Deny answers the same without one.
      return authorizerPolicy('Deny', methodArn);
    }
    if (check === 'invalid') {
      deps.logger?.warn('Connection refused: wrong bearer token', { connectionId });
      return authorizerPolicy('Deny', methodArn);
    }
    return authorizerPolicy('Allow', methodArn);
  };
}

const { config, clients, logger } = functionComposition('relay-authorizer');

export const handler = middy(
  createRelayAuthorizerHandler({
    verifier: new TokenVerifier({
      loadToken: secretLoader(clients.secretsManager(), config.agent.relayTokenSecretName),
    }),
    logger,
  }),
).use(injectLambdaContext(logger));
