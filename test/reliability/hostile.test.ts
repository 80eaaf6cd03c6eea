/**
 * Hostile input: property-based fuzzing (fast-check, fixed seeds, bounded runs) of every handler's
 * event and every relay command — random JSON, wrong types, huge strings, deep nesting, `__proto__` /
 * `constructor` keys, control characters, 10 MB frames. Each input gets a typed error (a FAILED reply
 * with a protocol code, a function error `"<CODE>: ..."`, a Deny/Unauthorized from the authorizer), the
 * relay keeps serving (a ping after each batch), and API Gateway sees no write at all.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ProtocolErrorCode } from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RawConnection, type RelayHarness, startRelayHarness } from '../support/relay-harness.js';
import { SecretsHygiene } from './hygiene.js';
import { ScenarioReport } from './report.js';

const MB = 1024 * 1024;
const PROTOCOL_CODES = new Set<string>(Object.values(ProtocolErrorCode));
/** Codes a hostile input may legitimately earn; INTERNAL would mean something broke. */
const FUNCTION_CODES = new Set<string>(Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL));

// ----------------------------------------------------------------------------------------------------
// Arbitraries

const controlChars = fc.string({
  unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  maxLength: 20,
});
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  controlChars,
  fc.constantFrom(
    '\ud800',
    '\udfff',
    'a\u0000b',
    '\u202e',
    '../../etc/passwd',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell-style payload, on purpose
    '${jndi:x}',
    '<script>',
    '" OR 1=1 --',
  ),
  fc.constantFrom('x'.repeat(129), 'y'.repeat(5000), 'z'.repeat(20_000)),
);
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e308),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);
const actionValue = fc.oneof(
  fc.constantFrom(
    'discover',
    'sync',
    'subscribe',
    'unsubscribe',
    'ping',
    'get',
    'PING',
    '',
    ' ping',
    '$default',
    '$connect',
  ),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype'),
  nastyValue,
);
/** Command-shaped objects whose fields are wrong in every way. */
const commandLike = fc.record(
  {
    action: actionValue,
    id: nastyValue,
    since: nastyValue,
    sources: nastyValue,
    subscriptionId: nastyValue,
    apiId: nastyValue,
    planId: nastyValue,
    application: fc.oneof(nastyValue, fc.record({ id: nastyValue, name: nastyValue })),
    apiKey: nastyValue,
    extra: nastyValue,
  },
  { requiredKeys: [] },
);
/** JSON text with prototype-pollution keys (JSON.parse makes them own properties; a merge would not). */
const pollutingText = fc
  .record({ action: actionValue, id: fc.string({ maxLength: 10 }) })
  .chain((base) =>
    fc.constantFrom(
      `{"__proto__":{"polluted":"yes"},"action":${JSON.stringify(base.action) ?? 'null'},"id":${JSON.stringify(base.id)}}`,
      `{"action":"ping","id":"p","constructor":{"prototype":{"polluted":"yes"}}}`,
      `{"action":"subscribe","id":"s","subscriptionId":"a","apiId":"b","planId":"c","application":{"id":"d","name":"e","__proto__":{"polluted":"yes"}}}`,
      `{"action":"sync","id":"y","since":{"__proto__":{"polluted":"yes"}}}`,
    ),
  );
const deepText = fc
  .integer({ min: 100, max: 12_000 })
  .chain((depth) =>
    fc.constantFrom(
      `${'['.repeat(depth)}${']'.repeat(depth)}`,
      `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
      `{"action":"ping","id":"d","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    ),
  );
/** Any text a client could send: JSON of command-shaped objects, random JSON, broken JSON, big, deep. */
const frameText = fc.oneof(
  { weight: 4, arbitrary: commandLike.map((c) => JSON.stringify(c)) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: nastyString },
  { weight: 1, arbitrary: pollutingText },
  { weight: 1, arbitrary: deepText },
  {
    weight: 1,
    arbitrary: fc.constantFrom('{', '{"action":', 'null', '[]', '"ping"', '{"action":"ping"', '\u0000', ''),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(`{"action":"ping","id":"${'i'.repeat(40_000)}"}`, 'w'.repeat(100_000)),
  },
);

function deepObject(depth: number): unknown {
  let o: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < depth; i++) o = { a: o };
  return o;
}
/** Events for the Lambda handlers invoked directly (not through API Gateway, which would sanitise them). */
const handlerEvent = fc.oneof(
  { weight: 4, arbitrary: commandLike },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, 0, '', 'null', [], true) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(deepObject(50_000), { action: 'subscribe', x: deepObject(20_000) }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      JSON.parse('{"__proto__":{"polluted":"yes"},"action":"get"}'),
      JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}}}'),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        sources: nastyValue,
        full: nastyValue,
        replyTo: fc.oneof(nastyValue, fc.record({ connectionId: nastyValue, commandId: nastyValue })),
      },
      { requiredKeys: [] },
    ),
  },
);

// ----------------------------------------------------------------------------------------------------

describe('hostile input', () => {
  const report = new ScenarioReport('hostile');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let agent: RelayHarness;
  let client: RawConnection;

  const apiGatewayWrites = () =>
    emu.proxy.calls.list({ service: 'apigateway' }).filter((c) => c.method.toUpperCase() !== 'GET').length;

  /** Sends one frame and waits for the next reply on the connection. */
  const replyTo = async (connection: RawConnection, frame: string | Buffer) => {
    const before = connection.messages.filter((m) => m.type === 'reply').length;
    connection.send(frame);
    return connection.waitFor(
      (m) =>
        m.type === 'reply' && connection.messages.filter((x) => x.type === 'reply').indexOf(m) === before,
      30_000,
    );
  };

  /** The relay still answers: a new connection gets `hello` and a SUCCEEDED ping. */
  const expectServing = async () => {
    const probe = await agent.connect();
    await probe.waitFor((m) => m.event === 'hello');
    const pong = await probe.command({ action: 'ping' });
    expect(pong).toMatchObject({ status: 'SUCCEEDED', payload: { agentId: 'reliability-agent' } });
    await probe.close();
    expect(apiGatewayWrites(), 'API Gateway writes').toBe(0);
    expect(({} as Record<string, unknown>).polluted, 'Object.prototype polluted').toBeUndefined();
  };

  /** A function error as Lambda reports it: `"<CODE>: message"` with a known, non-INTERNAL code. */
  const expectTypedFunctionError = async (run: () => Promise<unknown>, event: unknown) => {
    report.add({ operationsAttempted: 1, hostileInputs: 1 });
    try {
      await run();
      return 'ok' as const; // a valid request (e.g. `{}` for discovery): fine, as long as nothing is written
    } catch (error) {
      hygiene.error(error);
      const message = (error as Error).message;
      const code = /^([A-Z_]+): /.exec(message)?.[1] ?? '';
      expect(FUNCTION_CODES.has(code), `${message.slice(0, 200)} for ${preview(event)}`).toBe(true);
      return code;
    } finally {
      report.add({ survived: 1 });
    }
  };

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    agent = await startRelayHarness(emu);
    hygiene.secret(agent.token);
    // A catalog, so that command-shaped input meets real data (and still writes nothing).
    await agent.handlers.discovery({}, { getRemainingTimeInMillis: () => 60_000 });
    client = await agent.connect();
    await client.waitFor((m) => m.event === 'hello');
    emu.proxy.resetCalls();
  });
  afterAll(async () => {
    await client?.close();
    await agent?.stop();
    await emu?.stop();
    hygiene.stop();
    report.flush();
  });

  it('answers every fuzzed relay frame with a typed reply and keeps serving', async () => {
    const seed = report.seed('frames', 424242);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          frameText,
          frameText.map((t) => Buffer.from(t)),
        ),
        async (frame) => {
          report.add({ operationsAttempted: 1, hostileInputs: 1 });
          const reply = await replyTo(client, frame);
          hygiene.error(reply);
          if (reply.status === 'FAILED') {
            const error = reply.error as { code: string; message: string };
            expect(PROTOCOL_CODES.has(error.code), JSON.stringify(error)).toBe(true);
            expect(error.code).not.toBe('INTERNAL');
          } else {
            expect(reply.status).toBe('SUCCEEDED');
          }
          report.add({ survived: 1 });
        },
      ),
      { seed, numRuns: 250, endOnFailure: true },
    );
    await agent.idle();
    await expectServing();
  });

  it('closes a 10 MB frame with 1009 like API Gateway, invokes nothing, and keeps serving', async () => {
    for (const frame of [
      `{"action":"ping","id":"big","pad":"${'x'.repeat(10 * MB)}"}`,
      Buffer.alloc(10 * MB, 1),
    ]) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const victim = await agent.connect();
      await victim.waitFor((m) => m.event === 'hello');
      const before = victim.messages.length;
      victim.sendFrame(frame);
      expect(await victim.closed).toMatchObject({ code: 1009 });
      expect(victim.messages.length).toBe(before);
      report.add({ survived: 1 });
    }
    await agent.idle();
    await expectServing();
  });

  it('answers a 10 MB body that reaches relay-command with TOO_LARGE', async () => {
    const connectionId = agent.ws.connections()[0]!.connectionId;
    for (const body of [
      'x'.repeat(10 * MB),
      `{"action":"ping","id":"huge","pad":"${'p'.repeat(10 * MB)}"}`,
    ]) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const before = client.messages.filter((m) => m.type === 'reply').length;
      await agent.handlers.command({
        requestContext: { connectionId, eventType: 'MESSAGE', routeKey: '$default' },
        body,
        isBase64Encoded: false,
      } as never);
      const reply = await client.waitFor(
        (m) => m.type === 'reply' && client.messages.filter((x) => x.type === 'reply').indexOf(m) === before,
      );
      expect(reply).toMatchObject({ status: 'FAILED', error: { code: 'TOO_LARGE' } });
      report.add({ survived: 1 });
    }
    await expectServing();
  });

  it('rejects fuzzed relay-command events that API Gateway would never send without crashing', async () => {
    const seed = report.seed('commandEvents', 515151);
    const connectionId = agent.ws.connections()[0]!.connectionId;
    const event = fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.record(
        {
          requestContext: fc.oneof(
            nastyValue,
            fc.record({ connectionId: nastyValue, eventType: nastyValue }),
          ),
          body: nastyValue,
          isBase64Encoded: nastyValue,
        },
        { requiredKeys: [] },
      ),
      fc
        .record({ body: nastyValue, isBase64Encoded: fc.boolean() })
        .map((e) => ({ ...e, requestContext: { connectionId, eventType: 'MESSAGE' } })),
    );
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        report.add({ operationsAttempted: 1, hostileInputs: 1 });
        let result: unknown;
        try {
          result = await agent.handlers.command(e as never);
        } catch (error) {
          hygiene.error(error);
          throw new Error(
            `relay-command threw ${(error as Error).name}: ${(error as Error).message} for ${preview(e)}`,
          );
        }
        expect(result).toMatchObject({ statusCode: expect.any(Number) });
        report.add({ survived: 1 });
      }),
      { seed, numRuns: 200, endOnFailure: true },
    );
    await agent.idle();
    await expectServing();
  });

  it('answers every fuzzed subscriptions event with a typed function error and writes nothing', async () => {
    const seed = report.seed('subscriptionsEvents', 616161);
    const withAction = fc
      .tuple(fc.constantFrom('subscribe', 'unsubscribe', 'get'), commandLike)
      .map(([action, c]) => ({ ...c, action }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(handlerEvent, withAction), async (event) => {
        const outcome = await expectTypedFunctionError(
          () => agent.handlers.subscriptions(event, { getRemainingTimeInMillis: () => 5_000 }),
          event,
        );
        expect(outcome).not.toBe('ok');
      }),
      { seed, numRuns: 300, endOnFailure: true },
    );
    await expectServing();
  });

  it('answers every fuzzed discovery event with a typed function error, or runs read-only', async () => {
    const seed = report.seed('discoveryEvents', 717171);
    await fc.assert(
      fc.asyncProperty(handlerEvent, async (event) => {
        await expectTypedFunctionError(
          () => agent.handlers.discovery(event, { getRemainingTimeInMillis: () => 60_000 }),
          event,
        );
      }),
      { seed, numRuns: 120, endOnFailure: true },
    );
    await agent.idle();
    await expectServing();
  });

  // Found by the fuzzing below (seeds 515151 and 818181): both handlers crashed with a TypeError.
  it('answers relay-command events with a non-string body or connection id without a TypeError', async () => {
    const connectionId = agent.ws.connections()[0]!.connectionId;
    const before = client.messages.filter((m) => m.type === 'reply').length;
    for (const body of [9007199254740992, { action: 'ping' }, ['x'], true]) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const event = { requestContext: { connectionId, eventType: 'MESSAGE' }, body, isBase64Encoded: true };
      await expect(agent.handlers.command(event as never)).resolves.toEqual({ statusCode: 200 });
      report.add({ survived: 1 });
    }
    await client.waitFor(
      (m) => m.type === 'reply' && client.messages.filter((x) => x.type === 'reply').length >= before + 4,
    );
    const replies = client.messages.filter((m) => m.type === 'reply').slice(before);
    for (const reply of replies)
      expect(reply).toMatchObject({ status: 'FAILED', error: { code: 'INVALID_JSON' } });
    for (const id of [42, {}, '']) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const event = {
        requestContext: { connectionId: id, eventType: 'MESSAGE' },
        body: '{"action":"ping","id":"1"}',
      };
      await expect(agent.handlers.command(event as never)).resolves.toEqual({ statusCode: 400 });
      report.add({ survived: 1 });
    }
  });

  it('answers an authorizer event that is not an object with Deny, not a TypeError or a function error', async () => {
    for (const event of [undefined, null, 0, 'Bearer x', []]) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const answer = await agent.handlers.authorizer(event as never);
      expect(answer.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
      report.add({ survived: 1 });
    }
    const denied = await agent.handlers.authorizer({ headers: { Authorization: 'Bearer wrong' } } as never);
    expect(denied.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
  });

  it('never allows a fuzzed authorizer event: Deny or Unauthorized, nothing else', async () => {
    const seed = report.seed('authorizerEvents', 818181);
    const token = agent.token;
    const authorization = fc.oneof(
      nastyString,
      nastyString.map((s) => `Bearer ${s}`),
      fc.constantFrom(
        `Bearer ${token.slice(1)}`,
        `Bearer ${token}x`,
        `bearer  ${token.toUpperCase()}`,
        `Basic ${token}`,
        `Bearer`,
        `Bearer ${token} ${token}`,
      ),
      nastyValue,
    );
    const event = fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.record(
        {
          type: fc.constantFrom('REQUEST', 'TOKEN', ''),
          methodArn: nastyValue,
          headers: fc.oneof(
            nastyValue,
            fc.record({ Authorization: authorization }),
            fc.record({ authorization }),
          ),
          multiValueHeaders: nastyValue,
          requestContext: nastyValue,
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        report.add({ operationsAttempted: 1, hostileInputs: 1 });
        let effect: string;
        try {
          const result = await agent.handlers.authorizer(e as never);
          effect = result.policyDocument.Statement[0]?.Effect ?? 'none';
        } catch (error) {
          hygiene.error(error);
          effect = (error as Error).message;
        }
        expect(['Deny', 'Unauthorized'], `${effect} for ${preview(e)}`).toContain(effect);
        report.add({ survived: 1 });
      }),
      { seed, numRuns: 300, endOnFailure: true },
    );
    await expectServing();
  });

  it('recorded zero API Gateway writes and leaks no secret into logs, ledger items or error messages', async () => {
    await agent.idle();
    expect(apiGatewayWrites()).toBe(0);
    expect(emu.proxy.calls.count({ service: 'apigateway', outcome: 'refused' })).toBe(0);
    const leaks = await hygiene.leaks([agent.ledger]);
    report.add({ logLinesScanned: hygiene.lines().length, secretsLeaked: leaks.length });
    expect(leaks).toEqual([]);
  });
});

function preview(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text;
  } catch (error) {
    return `<unserialisable: ${(error as Error).message}>`;
  }
}
