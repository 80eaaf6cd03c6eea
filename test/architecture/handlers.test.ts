/** Handlers only adapt: middy + parse + one core call + shape, at most 40 code lines each. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FUNCTIONS = join(import.meta.dirname, '../../functions');
const MAX_CODE_LINES = 40;

/**
 * Code lines of a TypeScript module: not blank, not a comment, not part of an import (or a re-export
 * `export … from`, which is an import passed on).
 */
function codeLines(source: string): number {
  const withoutBlockComments = source.replace(/\/\*[\s\S]*?\*\//g, '');
  let count = 0;
  let inImport = false;
  for (const raw of withoutBlockComments.split('\n')) {
    const line = raw.trim();
    if (inImport) {
      if (/\bfrom\s+['"][^'"]+['"];?$/.test(line) || /^['"][^'"]+['"];?$/.test(line)) inImport = false;
      continue;
    }
    if (line === '' || line.startsWith('//')) continue;
    if (/^import\b/.test(line) || /^export\s+(type\s+)?(\*|\{)/.test(line)) {
      const complete = /\bfrom\s+['"][^'"]+['"];?$/.test(line) || /^import\s+['"][^'"]+['"];?$/.test(line);
      if (!complete) inImport = true;
      continue;
    }
    count++;
  }
  return count;
}

describe('handlers', () => {
  const names = readdirSync(FUNCTIONS);

  it('counts code lines without imports, comments or blank lines', () => {
    const source = [
      '/** doc */',
      'import { a,',
      '  b } from "x";',
      "export { c } from 'y';",
      '',
      '// why',
      'const x = a + b;',
      'export const y = x;',
    ].join('\n');
    expect(codeLines(source)).toBe(2);
  });

  it.each(names)('%s is at most 40 code lines', (name) => {
    const source = readFileSync(join(FUNCTIONS, name, 'handler.ts'), 'utf8');
    expect(codeLines(source)).toBeLessThanOrEqual(MAX_CODE_LINES);
  });
});
