import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { ChangeEventsOptions } from '../../layers/federation-core/src/config/schema.js';
import { changeEventPattern } from '../../layers/federation-core/src/discovery/change-events.js';
import { deadLetterQueue } from './dead-letter-queue.js';
import type { FederationFunction } from './federation-function.js';

export interface ChangeEventsProps {
  /** The discovery function: it runs the targeted discovery of each batch. */
  readonly discovery: FederationFunction;
  /** Its timeout (the queue's visibility timeout must exceed it). */
  readonly discoveryTimeout: Duration;
  readonly options: ChangeEventsOptions;
  /** Accounts whose rules may forward API Gateway events to this bus (member accounts). */
  readonly forwardingAccounts: readonly string[];
}

/**
 * Change events (`changeEvents`): an EventBridge rule on the API Gateway write calls CloudTrail records
 * in this account-region (and those member accounts and other regions forward to this bus, which the
 * bus policy allows) → an SQS queue → the discovery function, through an event source mapping whose
 * batching window coalesces a burst into one targeted run. A message whose run could not complete is
 * reported back (partial batch response), delivered again, and after `maxReceiveCount` deliveries
 * moved to the dead-letter queue, which the observability construct alarms on.
 */
export class ChangeEvents extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly rule: events.Rule;
  readonly busPolicies: events.CfnEventBusPolicy[] = [];

  constructor(scope: Construct, id: string, props: ChangeEventsProps) {
    super(scope, id);
    const { options } = props;
    this.deadLetterQueue = deadLetterQueue(this, 'of the change-event queue');
    this.queue = new sqs.Queue(this, 'Queue', {
      // A message being processed stays hidden for longer than one invocation can last.
      visibilityTimeout: props.discoveryTimeout.plus(Duration.minutes(1)),
      retentionPeriod: Duration.days(1),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: options.maxReceiveCount },
    });

    this.rule = new events.Rule(this, 'Rule', {
      description: 'apigw-federation: API Gateway write calls (CloudTrail) that change what is federated',
      eventPattern: changeEventPattern(),
      targets: [
        new targets.SqsQueue(this.queue, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 8 }),
      ],
    });

    props.discovery.function.addEventSource(
      new sources.SqsEventSource(this.queue, {
        // SQS allows more than 10 messages a batch only with a batching window.
        batchSize: options.batchWindowSeconds > 0 ? 100 : 10,
        maxBatchingWindow:
          options.batchWindowSeconds > 0 ? Duration.seconds(options.batchWindowSeconds) : undefined,
        reportBatchItemFailures: true,
        // Few concurrent targeted runs: they share the account-region's API Gateway budget and lease.
        maxConcurrency: 2,
      }),
    );

    const own = Stack.of(this).account;
    const accounts = [...new Set(props.forwardingAccounts)].filter((a) => a !== own).sort();
    for (const account of accounts) {
      this.busPolicies.push(
        new events.CfnEventBusPolicy(this, `Forwarding${account}`, {
          statementId: `apigw-federation-forwarding-${account}`,
          eventBusName: 'default',
          statement: {
            Sid: `apigw-federation-forwarding-${account}`,
            Effect: 'Allow',
            Principal: { AWS: `arn:${Stack.of(this).partition}:iam::${account}:root` },
            Action: 'events:PutEvents',
            Resource: `arn:${Stack.of(this).partition}:events:${Stack.of(this).region}:${own}:event-bus/default`,
          },
        }),
      );
    }
  }
}

export interface ChangeEventForwardingProps {
  /** The agent's event bus (`arn:aws:events:<region>:<account>:event-bus/default`). */
  readonly agentEventBusArn: string;
}

/**
 * The forwarding rule of a member account (or of another region of the agent's account): the same
 * API Gateway write calls, sent to the agent's event bus with a role that may only put events there.
 */
export class ChangeEventForwarding extends Construct {
  readonly rule: events.Rule;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: ChangeEventForwardingProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: "apigw-federation: forwards API Gateway change events to the agent's event bus",
    });
    this.rule = new events.Rule(this, 'Rule', {
      description: "apigw-federation: API Gateway write calls (CloudTrail), forwarded to the agent's bus",
      eventPattern: changeEventPattern(),
      targets: [
        new targets.EventBus(events.EventBus.fromEventBusArn(this, 'AgentBus', props.agentEventBusArn), {
          role: this.role,
        }),
      ],
    });
  }
}
