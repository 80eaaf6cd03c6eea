import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * A dead-letter queue of the agent (`<scope>/DeadLetterQueue`): 14 days' retention, SQS-managed
 * encryption, TLS only. cdk-nag's "a queue needs a dead-letter queue" is acknowledged with `of`, what
 * the queue is the dead-letter queue of.
 */
export function deadLetterQueue(scope: Construct, of: string): sqs.Queue {
  const queue = new sqs.Queue(scope, 'DeadLetterQueue', {
    retentionPeriod: Duration.days(14),
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself the dead-letter queue ${of}.`,
  });
  return queue;
}
