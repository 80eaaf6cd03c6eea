/**
 * The local runtime's AWS router: Lambda-signed requests to the Lambda endpoint, everything else to the AWS
 * endpoint, streamed through as they are. The targets here are plain servers that record what reached them,
 * one of them over https with a path prefix (a user's `AWS_ENDPOINT_URL` like
 * `https://localstack.example:4566/aws`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, globalAgent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsRouter, startAwsRouter } from '../../local/aws-router.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Answers 429 with a Retry-After and a fixed body, and records the request. */
function recorder(seen: Seen[]) {
  return (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      response.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': '7',
        'x-amzn-errortype': 'TooManyRequestsException',
      });
      response.end('{"message":"Too Many Requests"}');
    });
  };
}

const listen = (server: Server) =>
  new Promise<number>((done) =>
    server.listen(0, '127.0.0.1', () => done((server.address() as AddressInfo).port)),
  );
const close = (server: Server) => new Promise<void>((done) => server.close(() => done()));

const scope = (service: string) =>
  `AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=00`;

describe('local AWS router', () => {
  const awsSeen: Seen[] = [];
  const lambdaSeen: Seen[] = [];
  let dir: string;
  let aws: Server;
  let lambda: Server;
  let router: AwsRouter;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aws-router-'));
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const cert = await readFile(join(dir, 'cert.pem'));
    aws = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, recorder(awsSeen));
    lambda = createServer(recorder(lambdaSeen));
    // the test's own trust in its self-signed certificate (the router uses the default https agent)
    globalAgent.options.ca = cert;
    const awsPort = await listen(aws);
    const lambdaPort = await listen(lambda);
    router = await startAwsRouter({
      aws: `https://127.0.0.1:${awsPort}/aws/`,
      lambda: `http://127.0.0.1:${lambdaPort}`,
    });
  });

  afterAll(async () => {
    await router?.close();
    if (aws) await close(aws);
    if (lambda) await close(lambda);
    globalAgent.options.ca = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes an API Gateway call to an https endpoint with a path prefix, and its answer back, unchanged', async () => {
    const response = await fetch(`${router.endpoint}/restapis?limit=500&position=abc`, {
      headers: { authorization: scope('apigateway'), 'x-amz-date': '20260101T000000Z' },
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(response.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(await response.text()).toBe('{"message":"Too Many Requests"}');
    expect(awsSeen).toHaveLength(1);
    expect(awsSeen[0]).toMatchObject({
      method: 'GET',
      url: '/aws/restapis?limit=500&position=abc',
      headers: { authorization: scope('apigateway'), 'x-amz-date': '20260101T000000Z' },
    });
    expect(lambdaSeen).toHaveLength(0);
  });

  it('sends Lambda-signed requests, body included, to the Lambda endpoint only', async () => {
    const response = await fetch(`${router.endpoint}/2015-03-31/functions/discovery/invocations`, {
      method: 'POST',
      headers: { authorization: scope('lambda'), 'x-amz-invocation-type': 'Event' },
      body: '{"sources":["main"]}',
    });
    expect(response.status).toBe(429);
    await response.arrayBuffer();
    expect(lambdaSeen).toHaveLength(1);
    expect(lambdaSeen[0]).toMatchObject({
      method: 'POST',
      url: '/2015-03-31/functions/discovery/invocations',
      body: '{"sources":["main"]}',
      headers: { 'x-amz-invocation-type': 'Event' },
    });
    expect(awsSeen).toHaveLength(1);
  });
});
