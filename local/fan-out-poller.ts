/**
 * The local stand-in for Lambda's SQS event source mapping on the fan-out queue: polls the queue in the
 * emulator (moto), invokes the discovery function with one message per batch (batch size 1) and at most
 * `maxConcurrency` invocations at a time, deletes what succeeded and leaves what the function reported
 * in `batchItemFailures` (or everything of a failed invocation) for SQS to deliver again; the queue's
 * redrive policy moves a message to the dead-letter queue after `maxReceiveCount` receives, as on AWS.
 * One shortcut: a failed message is made visible again after `retryVisibilitySeconds` (default 1) instead
 * of the queue's whole visibility timeout, so retries show in seconds.
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export interface FanOutPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /** Invokes the discovery function with one SQS event (as the event source mapping would). */
  readonly deliver: (event: { Records: unknown[] }) => Promise<unknown>;
  /** The event source mapping's maximum concurrency. */
  readonly maxConcurrency: number;
  /** Seconds before a failed message is received again. Default 1. */
  readonly retryVisibilitySeconds?: number;
  /** The queue's ARN (the records' `eventSourceARN`). */
  readonly queueArn?: string;
  readonly region?: string;
  readonly onError?: (error: unknown) => void;
}

/** Answer of the function to an SQS batch (partial batch response). */
interface BatchAnswer {
  readonly batchItemFailures?: ReadonlyArray<{ readonly itemIdentifier: string }>;
}

export class FanOutPoller {
  private inFlight = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  /** Invocations made. */
  invocations = 0;
  /** Most invocations in flight at once. */
  peakConcurrency = 0;

  constructor(private readonly options: FanOutPollerOptions) {}

  start(): this {
    this.loop ??= this.poll();
    return this;
  }

  private async poll(): Promise<void> {
    const { sqs, queueUrl, maxConcurrency } = this.options;
    while (!this.stopped) {
      const room = maxConcurrency - this.inFlight;
      if (room <= 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      let messages: Message[] = [];
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, room),
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        messages = out.Messages ?? [];
      } catch (error) {
        if (this.stopped) return;
        this.options.onError?.(error);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const message of messages) {
        this.inFlight++;
        this.peakConcurrency = Math.max(this.peakConcurrency, this.inFlight);
        const job = this.invoke(message).finally(() => {
          this.inFlight--;
          this.running.delete(job);
          this.wake?.();
          this.wake = undefined;
        });
        this.running.add(job);
      }
    }
  }

  private async invoke(message: Message): Promise<void> {
    const { sqs, queueUrl } = this.options;
    this.invocations++;
    let failed: boolean;
    try {
      const answer = (await this.options.deliver({
        Records: [
          {
            messageId: message.MessageId,
            receiptHandle: message.ReceiptHandle,
            body: message.Body,
            attributes: { ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1' },
            eventSource: 'aws:sqs',
            eventSourceARN: this.options.queueArn ?? '',
            awsRegion: this.options.region ?? 'us-east-1',
          },
        ],
      })) as BatchAnswer | undefined;
      failed = (answer?.batchItemFailures ?? []).some((f) => f.itemIdentifier === message.MessageId);
    } catch (error) {
      this.options.onError?.(error);
      failed = true;
    }
    try {
      if (failed) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: this.options.retryVisibilitySeconds ?? 1,
          }),
        );
      } else {
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      }
    } catch (error) {
      if (!this.stopped) this.options.onError?.(error);
    }
  }

  /** Stops polling and waits for the invocations in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }
}

/**
 * Creates the fan-out queue and its dead-letter queue in the emulator, as the CDK app's construct does
 * (redrive after `maxReceiveCount` receives). Returns their URLs and ARNs.
 */
export async function createFanOutQueues(
  sqs: SQSClient,
  options: {
    readonly name: string;
    readonly maxReceiveCount: number;
    readonly visibilityTimeoutSeconds?: number;
  },
): Promise<{ queueUrl: string; queueArn: string; deadLetterQueueUrl: string; deadLetterQueueArn: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${options.name}-dlq` }));
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string;
  const deadLetterQueueArn = await arnOf(dlq.QueueUrl as string);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: options.name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 360),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: deadLetterQueueArn,
          maxReceiveCount: options.maxReceiveCount,
        }),
      },
    }),
  );
  return {
    queueUrl: queue.QueueUrl as string,
    queueArn: await arnOf(queue.QueueUrl as string),
    deadLetterQueueUrl: dlq.QueueUrl as string,
    deadLetterQueueArn,
  };
}
