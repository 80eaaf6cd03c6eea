import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantApiGatewayAccess } from '../iam/api-gateway-access.js';
import { grantInvokeUnqualified, grantLedger } from '../iam/grants.js';
import { deadLetterQueue } from './dead-letter-queue.js';
import { FederationFunction } from './federation-function.js';

export interface SubscriptionsProps {
  readonly coreLayer: lambda.ILayerVersion;
  readonly table: dynamodb.ITable;
  /** The secret API key values are derived from. */
  readonly apiKeySecret: secretsmanager.ISecret;
  /** Environment shared by the agent's functions. */
  readonly environment: Record<string, string>;
  /** Roles of other accounts the function assumes (sources' `roleArn`). @default - none */
  readonly assumeRoleArns?: readonly string[];
  /** Narrow the documented API Gateway resources to these regions. @default - the documented `*` region */
  readonly apiGatewayRegions?: readonly string[];
  /**
   * The opt-in lost-key sweeper: one more statement, `apigateway:GET` on `/apikeys`
   * (`OPT_IN_STATEMENTS.sweepLostKeys`), on the role and in the member-account session policy.
   * @default false
   */
  readonly sweepLostKeys?: boolean;
}

/**
 * Subscriptions: the function that creates an API key on a usage plan and deletes it (the documented
 * `apigateway:POST` and `apigateway:DELETE` statements, nothing more — plus, only with `sweepLostKeys`,
 * the opt-in `apigateway:GET` on `/apikeys` of the lost-key sweeper). Invoked by the relay and by
 * operators (`aws lambda invoke`), synchronously, and by discovery asynchronously (`revoke-keys`: the
 * keys of subscriptions a plan removal revoked): those invocations are retried twice by Lambda and the
 * last failure lands in a dead-letter queue (on-failure destination). An hourly schedule invokes it with
 * `finish-revocations`, which deletes the keys of revocations whose deletion was lost (a dead-lettered
 * `revoke-keys`, an unsubscribe never repeated), so a revoked subscription's key goes without an operator.
 */
export class Subscriptions extends Construct {
  readonly handler: FederationFunction;
  /** Failed asynchronous invocations (`revoke-keys` after Lambda's retries): the on-failure destination. */
  readonly deadLetterQueue: sqs.Queue;
  readonly apiGatewayPolicy: iam.Policy;
  /** The opt-in `GET /apikeys` of the lost-key sweeper, when `sweepLostKeys` is on. */
  readonly sweepLostKeysPolicy?: iam.Policy;
  /** The hourly `finish-revocations`. */
  readonly finishRevocations: events.Rule;

  constructor(scope: Construct, id: string, props: SubscriptionsProps) {
    super(scope, id);
    this.deadLetterQueue = deadLetterQueue(this, '(Lambda on-failure destination)');
    this.handler = new FederationFunction(this, 'Handler', {
      name: 'subscriptions',
      description:
        'apigw-federation: subscribe/unsubscribe/get (API keys on usage plans), revoke-keys, finish-revocations',
      coreLayer: props.coreLayer,
      environment: props.environment,
      // Only asynchronous invocations are retried (discovery's `revoke-keys`, idempotent); the relay's
      // and operators' calls are synchronous and answered, never retried by Lambda.
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
    });
    const role = this.handler.role;
    grantLedger(role, props.table);
    props.apiKeySecret.grantRead(role);

    const access = grantApiGatewayAccess(this, this.handler, 'subscriptions', {
      regions: props.apiGatewayRegions,
      assumeRoleArns: props.assumeRoleArns,
      // Beyond the documented policy, on purpose and only when configured.
      optIns: props.sweepLostKeys ? ['sweepLostKeys'] : [],
    });
    this.apiGatewayPolicy = access.policy;
    this.sweepLostKeysPolicy = access.optInPolicy;

    this.finishRevocations = new events.Rule(this, 'FinishRevocations', {
      description: 'apigw-federation: delete the keys of revoked subscriptions whose deletion was lost',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.LambdaFunction(this.handler.function, {
          event: events.RuleTargetInput.fromObject({ action: 'finish-revocations' }),
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }

  /** Lets `grantee` invoke the subscriptions function. */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return grantInvokeUnqualified(grantee, this.handler.function);
  }
}
