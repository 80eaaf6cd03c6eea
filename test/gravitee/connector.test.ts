import { describe, expect, it } from 'vitest';
import { backoffDelay, GRAVITEE_BACKOFF, noHandlerReply } from '../../gravitee/src/connector.js';

describe('Gravitee connector policy', () => {
  it("backs off as Gravitee's connector does: 1 s, ×1.5 per attempt, at most 5 min", () => {
    expect(GRAVITEE_BACKOFF).toEqual({ initialMs: 1_000, factor: 1.5, maxMs: 300_000 });
    expect([1, 2, 3, 4].map((a) => backoffDelay(a))).toEqual([1_000, 1_500, 2_250, 3_375]);
    expect(backoffDelay(50)).toBe(300_000);
  });

  it('answers a command type without a handler with NO_REPLY, keeping its id', () => {
    expect(noHandlerReply({ id: 'c1', type: 'PROMOTE', payload: {} })).toEqual({
      commandId: 'c1',
      type: 'NO_REPLY',
      commandStatus: 'ERROR',
      errorDetails: "No handler found for command type 'PROMOTE'. Ignoring",
    });
  });
});
