import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantApiGatewayAccess } from '../iam/api-gateway-access.js';
import { grantLedger } from '../iam/grants.js';
import { deadLetterQueue } from './dead-letter-queue.js';
import { FederationFunction } from './federation-function.js';

export interface DiscoveryProps {
  readonly coreLayer: lambda.ILayerVersion;
  readonly table: dynamodb.ITable;
  /** Environment shared by the agent's functions. */
  readonly environment: Record<string, string>;
  /** EventBridge schedule expression. @default 'rate(15 minutes)' */
  readonly schedule?: string;
  /** Roles of other accounts discovery assumes (sources' `roleArn`). @default - none */
  readonly assumeRoleArns?: readonly string[];
  /** Narrow the documented API Gateway resources to these regions. @default - the documented `*` region */
  readonly apiGatewayRegions?: readonly string[];
  /** @default Duration.minutes(10) */
  readonly timeout?: Duration;
}

/**
 * Discovery: the function that reads API Gateway (the documented `apigateway:GET` statement, nothing
 * more), runs on an EventBridge schedule and on demand (the relay invokes it asynchronously), and
 * publishes its outbox events to the relay's connections. Failed asynchronous invocations and
 * undeliverable scheduled events land in a dead-letter queue.
 */
export class Discovery extends Construct {
  readonly handler: FederationFunction;
  readonly deadLetterQueue: sqs.Queue;
  readonly schedule: events.Rule;
  readonly apiGatewayPolicy: iam.Policy;
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: DiscoveryProps) {
    super(scope, id);
    this.deadLetterQueue = deadLetterQueue(
      this,
      '(Lambda on-failure destination and EventBridge target DLQ)',
    );
    this.timeout = props.timeout ?? Duration.minutes(10);
    this.handler = new FederationFunction(this, 'Handler', {
      name: 'discovery',
      description: 'apigw-federation: discovers REST APIs, stages and usage plans; publishes catalog events',
      coreLayer: props.coreLayer,
      environment: props.environment,
      memorySize: 512,
      timeout: this.timeout,
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      retryAttempts: 0,
    });
    const role = this.handler.role;
    grantLedger(role, props.table);

    this.apiGatewayPolicy = grantApiGatewayAccess(this, this.handler, 'discovery', {
      regions: props.apiGatewayRegions,
      assumeRoleArns: props.assumeRoleArns,
    }).policy;

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'apigw-federation: scheduled discovery run',
      schedule: events.Schedule.expression(props.schedule ?? 'rate(15 minutes)'),
      targets: [
        new targets.LambdaFunction(this.handler.function, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }
}
