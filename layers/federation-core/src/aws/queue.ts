/**
 * An SQS queue the agent sends work to (fan-out units, their continuations and deadline checks).
 * `SendMessageBatch` of up to 10 messages a call; entries SQS did not accept are sent again, then a
 * failure is thrown (the caller's invocation fails and its own message is delivered again).
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { AwsError } from '../errors.js';

export interface QueueMessage {
  readonly body: string;
  /** Seconds before the message can be received (SQS allows 0–900). */
  readonly delaySeconds?: number;
}

/** Where work is sent; the SQS implementation is `SqsWorkQueue`, tests may pass their own. */
export interface WorkQueue {
  send(messages: readonly QueueMessage[]): Promise<void>;
}

const BATCH_MAX = 10;
const ATTEMPTS = 4;

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(messages: readonly QueueMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += BATCH_MAX) {
      let entries = messages.slice(i, i + BATCH_MAX).map((m, j) => ({
        Id: String(j),
        MessageBody: m.body,
        ...(m.delaySeconds ? { DelaySeconds: Math.min(900, Math.max(0, Math.round(m.delaySeconds))) } : {}),
      }));
      for (let attempt = 1; entries.length > 0; attempt++) {
        const out = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        entries = entries.filter((e) => failed.has(e.Id));
        if (entries.length > 0 && attempt >= ATTEMPTS) {
          throw new AwsError(
            `SendMessageBatch: ${entries.length} message(s) not accepted by ${this.queueUrl}`,
          );
        }
        if (entries.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }
}
