import { ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFanOutQueues, FanOutPoller } from '../../local/fan-out-poller.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

describe('local fan-out poller: the event source mapping against moto', () => {
  let emu: Emulator;
  let sqs: SQSClient;
  beforeAll(async () => {
    emu = await startEmulator();
    sqs = new SQSClient(emu.clientConfig({ via: 'moto', maxAttempts: 3 }));
  });
  afterAll(async () => {
    sqs?.destroy();
    await emu?.stop();
  });

  it('one message per invocation, at most maxConcurrency at once, failures delivered again then dead-lettered', async () => {
    const queues = await createFanOutQueues(sqs, { name: 'poller', maxReceiveCount: 2 });
    const bodies = Array.from({ length: 20 }, (_, i) => (i === 7 ? 'fail' : `ok-${i}`));
    for (let i = 0; i < bodies.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queues.queueUrl,
          Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
        }),
      );
    }
    const seen = new Map<string, number>();
    let inFlight = 0;
    let peak = 0;
    const poller = new FanOutPoller({
      sqs,
      queueUrl: queues.queueUrl,
      maxConcurrency: 3,
      retryVisibilitySeconds: 0,
      deliver: async (event) => {
        const [record] = event.Records as Array<{
          messageId: string;
          body: string;
          attributes: Record<string, string>;
        }>;
        expect(event.Records).toHaveLength(1);
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
        seen.set(record!.body, (seen.get(record!.body) ?? 0) + 1);
        return record!.body === 'fail' ? { batchItemFailures: [{ itemIdentifier: record!.messageId }] } : {};
      },
    }).start();
    let dead: string[] = [];
    const okSeen = () => bodies.filter((b) => b !== 'fail').every((b) => seen.has(b));
    for (let i = 0; i < 100 && (dead.length === 0 || !okSeen()); i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (dead.length > 0) continue;
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.deadLetterQueueUrl }));
      dead = (out.Messages ?? []).map((m) => m.Body!);
    }
    await poller.stop();
    expect(dead).toEqual(['fail']);
    expect(seen.get('fail')).toBe(2); // maxReceiveCount deliveries
    for (const body of bodies.filter((b) => b !== 'fail')) expect(seen.get(body)).toBe(1);
    expect(peak).toBeLessThanOrEqual(3);
    expect(poller.peakConcurrency).toBeLessThanOrEqual(3);
  });
});
