import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { APIGatewayClient, CreateApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import {
  CreateTableCommand,
  DynamoDBClient,
  ScanCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, resetMoto, startMoto } from '../../emulator/moto.js';

const execFileAsync = promisify(execFile);

/** A DynamoDB client on `endpoint` and a table `t` with a string hash key `pk`. */
async function tableT(endpoint: string, options: { maxAttempts?: number } = {}): Promise<DynamoDBClient> {
  const db = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    ...options,
  });
  await db.send(
    new CreateTableCommand({
      TableName: 't',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    }),
  );
  return db;
}

describe('moto lifecycle', () => {
  it('starts on a free port, answers, resets, and stops', async () => {
    const moto = await startMoto();
    try {
      expect(moto.endpoint).toBe(`http://127.0.0.1:${moto.port}`);
      const client = new APIGatewayClient({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      await client.send(new CreateApiKeyCommand({ name: 'k' }));
      expect((await client.send(new GetApiKeysCommand({}))).items).toHaveLength(1);
      await resetMoto(moto.endpoint);
      expect((await client.send(new GetApiKeysCommand({}))).items ?? []).toHaveLength(0);
    } finally {
      await moto.stop();
    }
    await expect(fetch(`${moto.endpoint}/moto-api/`)).rejects.toThrow();
    await moto.stop(); // idempotent
  });

  it('rolls a failed TransactWriteItems back whole (the boot’s rollback of the items it names)', async () => {
    const moto = await startMoto();
    try {
      const db = await tableT(moto.endpoint);
      const put = (pk: string) => ({ Put: { TableName: 't', Item: { pk: { S: pk } } } });
      await db.send(new TransactWriteItemsCommand({ TransactItems: [put('kept'), put('kept-too')] }));
      // 49 puts, then a condition that fails: none of the 49 may remain, the earlier items stay.
      const failing = db.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            ...Array.from({ length: 49 }, (_, i) => put(`new-${i}`)),
            { ...put('kept'), Put: { ...put('kept').Put, ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      await expect(failing).rejects.toMatchObject({ name: 'TransactionCanceledException' });
      const items = (await db.send(new ScanCommand({ TableName: 't' }))).Items ?? [];
      expect(items.map((i) => i.pk?.S).sort()).toEqual(['kept', 'kept-too']);
    } finally {
      await moto.stop();
    }
  });

  it('isolates TransactWriteItems: a cancelled transaction never undoes another request’s write', async () => {
    // moto rolls a cancelled transaction back by putting back a copy of the whole table taken when
    // it began: a write another request made meanwhile was lost. DynamoDB isolates transactions.
    const moto = await startMoto();
    try {
      const db = await tableT(moto.endpoint, { maxAttempts: 1 });
      const put = (pk: string) => ({
        Put: { TableName: 't', Item: { pk: { S: pk }, pad: { S: 'x'.repeat(2000) } } },
      });
      // A table large enough that copying it takes a while.
      for (let i = 0; i < 2000; i += 100) {
        await db.send(
          new TransactWriteItemsCommand({
            TransactItems: Array.from({ length: 100 }, (_, j) => put(`base-${i + j}`)),
          }),
        );
      }
      const cancelled = (round: number) =>
        db
          .send(
            new TransactWriteItemsCommand({
              TransactItems: [
                put(`never-${round}`),
                { Put: { ...put('base-0').Put, ConditionExpression: 'attribute_not_exists(pk)' } },
              ],
            }),
          )
          .catch(() => undefined);
      const written: string[] = [];
      await Promise.all(
        Array.from({ length: 12 }, async (_, round) => {
          await Promise.all([
            cancelled(round),
            db.send(new TransactWriteItemsCommand({ TransactItems: [put(`written-${round}`)] })).then(() => {
              written.push(`written-${round}`);
            }),
          ]);
        }),
      );
      const items = new Set<string>();
      let start: Record<string, { S: string }> | undefined;
      do {
        const page = await db.send(new ScanCommand({ TableName: 't', ExclusiveStartKey: start }));
        for (const item of page.Items ?? []) items.add(item.pk!.S!);
        start = page.LastEvaluatedKey as typeof start;
      } while (start);
      expect(written.filter((pk) => !items.has(pk))).toEqual([]);
      expect([...items].filter((pk) => pk.startsWith('never-'))).toEqual([]);
    } finally {
      await moto.stop();
    }
  }, 60_000);

  it('fails clearly when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(startMoto({ port })).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
    }
  });

  it('without python and moto, fails with what to install', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'no-python-'));
    try {
      const script =
        "import('./emulator/moto.ts').then(m => m.ensureMoto()).then(() => process.exit(0), e => { console.error(e.message); process.exit(3); })";
      const run = execFileAsync(process.execPath, ['--import', 'tsx', '-e', script], {
        cwd: REPO_ROOT,
        env: { PATH: empty, HOME: empty, MOTO_VENV_DIR: join(empty, 'venv') },
      });
      const failure = await run.then(
        () => undefined,
        (error: { code?: number; stderr?: string }) => error,
      );
      expect(failure?.code).toBe(3);
      expect(failure?.stderr).toContain("pip install 'moto[server]'");
      expect(failure?.stderr).toContain('Python >= 3.9');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
