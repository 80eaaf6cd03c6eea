/**
 * The local stand-in for CloudTrail → EventBridge → SQS: the AWS endpoint `npm start` prints sees every
 * API Gateway call made through it; a successful write call of the change-event list becomes the
 * event CloudTrail would record (`source: aws.apigateway`, `detail-type: AWS API Call via CloudTrail`,
 * `detail.eventName`, `requestParameters`, `responseElements`), and a small queue hands batches of them
 * to the discovery function as SQS would (batching window, redelivery, a dead-letter count).
 */
import { randomUUID } from 'node:crypto';
import { apiGatewayOperation } from '../emulator/operations.js';
import {
  CHANGE_EVENT_DETAIL_TYPE,
  CHANGE_EVENT_EVENT_SOURCE,
  CHANGE_EVENT_NAMES,
  CHANGE_EVENT_SOURCE,
} from '../layers/federation-core/src/index.js';

/** CloudTrail's names of API Gateway's path parameters. */
const PATH_PARAMETERS: Record<string, string> = {
  restapi_id: 'restApiId',
  stage_name: 'stageName',
  deployment_id: 'deploymentId',
  usageplan_id: 'usagePlanId',
  resource_arn: 'resourceArn',
};

export interface CloudTrailEventInput {
  readonly accountId: string;
  readonly region: string;
  readonly eventName: string;
  readonly requestParameters?: Record<string, unknown>;
  readonly responseElements?: Record<string, unknown>;
  readonly eventTime?: Date;
}

/** The EventBridge event of one API Gateway management call recorded by CloudTrail. */
export function cloudTrailEvent(input: CloudTrailEventInput): Record<string, unknown> {
  const time = (input.eventTime ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': CHANGE_EVENT_DETAIL_TYPE,
    source: CHANGE_EVENT_SOURCE,
    account: input.accountId,
    time,
    region: input.region,
    resources: [],
    detail: {
      eventVersion: '1.08',
      eventTime: time,
      eventSource: CHANGE_EVENT_EVENT_SOURCE,
      eventName: input.eventName,
      awsRegion: input.region,
      requestParameters: input.requestParameters ?? null,
      responseElements: input.responseElements ?? null,
      eventID: randomUUID(),
      readOnly: false,
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: input.accountId,
      eventCategory: 'Management',
    },
  };
}

export interface ApiGatewayWrite {
  readonly method: string;
  /** Request path and query, as received. */
  readonly url: string;
  readonly region: string;
  readonly accountId: string;
  readonly requestBody: Buffer;
  readonly status: number;
  readonly responseBody: Buffer;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function json(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The CloudTrail event of an API Gateway call, or `undefined` when CloudTrail's rule would not match
 * it (a read, an operation outside the change-event list, a call API Gateway refused).
 */
export function cloudTrailEventOf(write: ApiGatewayWrite): Record<string, unknown> | undefined {
  if (write.status < 200 || write.status >= 300) return undefined;
  const url = new URL(write.url, 'http://localhost');
  const { operation, template } = apiGatewayOperation(write.method, url.pathname, url.searchParams);
  if (!CHANGE_EVENT_NAMES.includes(operation)) return undefined;
  const requestParameters: Record<string, unknown> = {};
  const names = template.split('/');
  const values = url.pathname.split('/');
  names.forEach((name, i) => {
    const param = /^\{(.+)\}$/.exec(name)?.[1];
    if (param && values[i] !== undefined) {
      requestParameters[PATH_PARAMETERS[param] ?? param] = decodeURIComponent(values[i]);
    }
  });
  const body = json(write.requestBody);
  if (body) requestParameters[`${lowerFirst(operation)}Input`] = body;
  return cloudTrailEvent({
    accountId: write.accountId,
    region: write.region,
    eventName: operation,
    requestParameters,
    responseElements: json(write.responseBody),
  });
}

/** The discovery function's answer to an SQS batch (partial batch response). */
export interface BatchAnswer {
  readonly batchItemFailures?: ReadonlyArray<{ readonly itemIdentifier: string }>;
}

export interface ChangeQueueOptions {
  /** Delivers one batch as the SQS event source mapping would (the discovery function). */
  readonly deliver: (event: { Records: unknown[] }) => Promise<BatchAnswer | unknown>;
  /** Batching window (ms): the first event of a batch waits this long for others. Default 250. */
  readonly batchWindowMs?: number;
  /** Deliveries before a message is dead-lettered. Default 5. */
  readonly maxReceiveCount?: number;
  /** Wait before a failed message is delivered again (the visibility timeout). Default 1000 ms. */
  readonly redeliveryMs?: number;
  readonly onDeadLetter?: (body: string) => void;
  readonly onError?: (error: unknown) => void;
}

interface Message {
  readonly messageId: string;
  readonly body: string;
  receiveCount: number;
}

/** The local queue: a batching window, redelivery of failed items, a dead-letter count. */
export class LocalChangeQueue {
  private pending: Message[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly redeliveries = new Set<NodeJS.Timeout>();
  private delivering: Promise<void> = Promise.resolve();
  private closed = false;
  /** Messages that ran out of deliveries. */
  readonly deadLetters: string[] = [];
  /** Batches delivered. */
  batches = 0;

  constructor(private readonly options: ChangeQueueOptions) {}

  send(event: Record<string, unknown>): void {
    this.enqueue({ messageId: randomUUID(), body: JSON.stringify(event), receiveCount: 0 });
  }

  private enqueue(message: Message): void {
    if (this.closed) return;
    this.pending.push(message);
    this.timer ??= setTimeout(() => this.flush(), this.options.batchWindowMs ?? 250);
  }

  private flush(): void {
    this.timer = undefined;
    const batch = this.pending.splice(0, 10_000);
    if (batch.length === 0) return;
    this.delivering = this.delivering.then(() => this.deliver(batch));
  }

  private async deliver(batch: Message[]): Promise<void> {
    for (const m of batch) m.receiveCount++;
    let failed: Set<string>;
    try {
      this.batches++;
      const answer = (await this.options.deliver({
        Records: batch.map((m) => ({
          messageId: m.messageId,
          body: m.body,
          eventSource: 'aws:sqs',
          attributes: { ApproximateReceiveCount: String(m.receiveCount) },
        })),
      })) as BatchAnswer | undefined;
      failed = new Set((answer?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      this.options.onError?.(error);
      failed = new Set(batch.map((m) => m.messageId));
    }
    for (const m of batch) {
      if (!failed.has(m.messageId)) continue;
      if (m.receiveCount >= (this.options.maxReceiveCount ?? 5)) {
        this.deadLetters.push(m.body);
        this.options.onDeadLetter?.(m.body);
        continue;
      }
      const timer = setTimeout(() => {
        this.redeliveries.delete(timer);
        this.enqueue(m);
      }, this.options.redeliveryMs ?? 1000);
      this.redeliveries.add(timer);
    }
  }

  /** Stops accepting events; waits for the batch being delivered. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const timer of this.redeliveries) clearTimeout(timer);
    this.redeliveries.clear();
    await this.delivering;
  }
}
