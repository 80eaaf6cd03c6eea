import { Duration } from 'aws-cdk-lib';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { FanOutOptions } from '../../layers/federation-core/src/config/schema.js';
import { deadLetterQueue } from './dead-letter-queue.js';
import type { FederationFunction } from './federation-function.js';

export interface FanOutProps {
  /** The discovery function: it coordinates runs and consumes their units. */
  readonly discovery: FederationFunction;
  /** Its timeout (the queue's visibility timeout must exceed it). */
  readonly discoveryTimeout: Duration;
  readonly options: FanOutOptions;
}

/**
 * Fan-out (`fanOut`): a run is one SQS message per account-region on this queue, consumed by the
 * discovery function through an event source mapping with a maximum concurrency (the account-regions
 * discovered at once), one message per invocation, partial batch responses; a unit that fails on each of
 * `maxReceiveCount` deliveries moves to the dead-letter queue (the observability construct alarms on it).
 * The function sends to the queue: the coordinator's units and deadline, a unit's continuation.
 */
export class FanOut extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly eventSource: sources.SqsEventSource;

  constructor(scope: Construct, id: string, props: FanOutProps) {
    super(scope, id);
    const { options } = props;
    this.deadLetterQueue = deadLetterQueue(this, 'of the fan-out queue');
    this.queue = new sqs.Queue(this, 'Queue', {
      // A unit being worked on stays hidden for longer than one invocation can last.
      visibilityTimeout: props.discoveryTimeout.plus(Duration.minutes(1)),
      // Outlives the longest run (its deadline), so no unit message expires unseen.
      retentionPeriod: Duration.minutes(Math.max(24 * 60, options.deadlineMinutes + 60)),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: options.maxReceiveCount },
    });
    this.eventSource = new sources.SqsEventSource(this.queue, {
      // One account-region per invocation: each gets the whole time budget and its own bucket.
      batchSize: 1,
      reportBatchItemFailures: true,
      maxConcurrency: options.maxConcurrency,
    });
    props.discovery.function.addEventSource(this.eventSource);
    this.queue.grantSendMessages(props.discovery.role);
    props.discovery.function.addEnvironment('FED_FAN_OUT_QUEUE_URL', this.queue.queueUrl);
  }
}
