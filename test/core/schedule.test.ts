import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../layers/federation-core/src/config/load.js';
import { scheduleProblem } from '../../layers/federation-core/src/config/schedule.js';

describe('schedule expressions (EventBridge grammar)', () => {
  it.each([
    'rate(1 minute)',
    'rate(5 minutes)',
    'rate(1 hour)',
    'rate(12 hours)',
    'rate(1 day)',
    'rate(7 days)',
    'cron(0/15 * * * ? *)',
    'cron(0 10 * * ? *)',
    'cron(15 12 ? * MON-FRI *)',
    'cron(0 8 1 * ? 2027)',
    'cron(0 18 ? * 6L 2027-2030)',
    'cron(0 9 ? * 2#1 *)',
    'cron(0 0 L * ? *)',
    'cron(0 0 15W JAN,JUL ? *)',
  ])('accepts %s', (expression) => {
    expect(scheduleProblem(expression)).toBeUndefined();
    expect(parseAgentConfig({ schedule: expression }).schedule).toBe(expression);
  });

  it.each([
    ['rate(1 minutes)', /rate\(1 minute\)/],
    ['rate(5 minute)', /rate\(5 minutes\)/],
    ['rate(0 minutes)', /at least 1/],
    ['rate(01 minutes)', /positive whole number/],
    ['rate(5 weeks)', /minute, hour or day/],
    ['rate(5minutes)', /rate\(value unit\)/],
    ['cron(0/15 * * * *)', /six fields/],
    ['cron(0/15 * * * ? * *)', /six fields/],
    ['cron(0 10 * * * *)', /'\?'/],
    ['cron(0 10 ? * ? *)', /'\?'/],
    ['cron(0 10 * * MON *)', /'\?'/],
    ['cron(x 10 * * ? *)', /minutes field/],
    ['every 5 minutes', /expected an EventBridge expression/],
  ])('refuses %s with a message', (expression, message) => {
    expect(scheduleProblem(expression)).toMatch(message);
    expect(() => parseAgentConfig({ schedule: expression })).toThrow(
      new RegExp(
        `config\\.schedule: .*received ${JSON.stringify(JSON.stringify(expression))
          .slice(1, -1)
          .replace(/[()?*]/g, '\\$&')}`,
      ),
    );
  });
});
