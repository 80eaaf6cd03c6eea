/**
 * EventBridge schedule expressions, checked the way EventBridge checks them, so a bad schedule fails
 * `cdk synth` (and config loading) with a message instead of a rolled-back deploy:
 *
 * - `rate(value unit)`: a positive whole number and `minute`/`hour`/`day` — singular for 1, plural
 *   otherwise (`rate(1 minute)`, `rate(5 minutes)`);
 * - `cron(minutes hours day-of-month month day-of-week year)`: six fields, and exactly one of
 *   day-of-month and day-of-week is `?`.
 *
 * See "Schedule expressions for rules" in the Amazon EventBridge user guide.
 */

const CRON_FIELDS = [
  { name: 'minutes', chars: /^[0-9,\-*/]+$/ },
  { name: 'hours', chars: /^[0-9,\-*/]+$/ },
  { name: 'day-of-month', chars: /^([0-9,\-*/LW]+|\?)$/ },
  { name: 'month', chars: /^[0-9A-Za-z,\-*/]+$/ },
  { name: 'day-of-week', chars: /^([0-9A-Za-z,\-*/L#]+|\?)$/ },
  { name: 'year', chars: /^[0-9,\-*/]+$/ },
] as const;

const EXPECTED = "expected an EventBridge expression like 'rate(15 minutes)' or 'cron(0/15 * * * ? *)'";

/** What is wrong with a schedule expression, or undefined when EventBridge accepts it. */
export function scheduleProblem(expression: string): string | undefined {
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) {
    const parts = /^(\S+) (\S+)$/.exec(rate[1]!);
    if (!parts) return "expected rate(value unit), e.g. 'rate(5 minutes)'";
    const [, value, unit] = parts as unknown as [string, string, string];
    if (!/^(0|[1-9]\d*)$/.test(value))
      return `expected the rate value to be a positive whole number (got '${value}')`;
    const n = Number(value);
    if (n < 1) return 'expected a rate of at least 1 (EventBridge refuses rate(0 ...))';
    const base = unit.replace(/s$/, '');
    if (!['minute', 'hour', 'day'].includes(base))
      return `expected the rate unit to be minute, hour or day (got '${unit}')`;
    const wanted = n === 1 ? base : `${base}s`;
    if (unit !== wanted)
      return `expected 'rate(${n} ${wanted})': EventBridge wants the singular for 1 and the plural otherwise`;
    return undefined;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) {
    const fields = cron[1]!.trim().split(/\s+/);
    if (fields.length !== 6) {
      return `expected six fields in cron(minutes hours day-of-month month day-of-week year) (got ${fields.length})`;
    }
    for (const [i, field] of fields.entries()) {
      const spec = CRON_FIELDS[i]!;
      if (!spec.chars.test(field))
        return `expected a valid ${spec.name} field in the cron expression (got '${field}')`;
    }
    const [, , dayOfMonth, , dayOfWeek] = fields;
    if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
      return "expected exactly one of day-of-month and day-of-week to be '?' in the cron expression";
    }
    return undefined;
  }
  return EXPECTED;
}
