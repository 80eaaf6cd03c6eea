/**
 * `npm start`'s runtime with fan-out on (in this test process: the handler modules read `process.env`):
 * the fan-out queue in its moto, the poller invoking discovery as the event source mapping would, the
 * first run answered with its summary, an invocation `{"full": true}` through the Lambda endpoint answered
 * when its run completes.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.js';

describe('local runtime with fan-out', () => {
  let runtime: LocalRuntime | undefined;
  beforeAll(async () => {
    delete process.env.AWS_ENDPOINT_URL;
    process.env.FED_CONFIG = JSON.stringify({ fanOut: { enabled: true, maxConcurrency: 2 } });
    runtime = await startLocalRuntime({
      relayPort: 0,
      lambdaPort: 0,
      awsPort: 0,
      scheduleSeconds: 0,
      onProgress: () => undefined,
    });
  }, 180_000);
  afterAll(async () => {
    await runtime?.stop();
  });

  it('runs discovery as units on the queue in moto, and answers with the run summary', async () => {
    const first = runtime!.firstDiscovery as {
      fanOut?: { units: number; unitsEnded: number };
      counts: { upserted: number };
    };
    expect(first.fanOut).toMatchObject({ units: 1, unitsEnded: 1 });
    expect(first.counts.upserted).toBeGreaterThan(0);
    expect((await runtime!.catalog()).length).toBe(first.counts.upserted);

    const lambda = new LambdaClient({
      endpoint: runtime!.lambdaUrl,
      region: runtime!.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const out = await lambda.send(
      new InvokeCommand({ FunctionName: 'discovery', Payload: new TextEncoder().encode('{"full":true}') }),
    );
    lambda.destroy();
    const answer = JSON.parse(new TextDecoder().decode(out.Payload)) as {
      full: boolean;
      fanOut: { units: number; invocations: number };
      counts: { exported: number };
    };
    expect(answer.full).toBe(true);
    expect(answer.fanOut).toMatchObject({ units: 1, invocations: 1 });
    expect(answer.counts.exported).toBe(first.counts.upserted);
  }, 60_000);
});
