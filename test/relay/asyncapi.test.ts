import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMAND_ACTIONS, EventType } from '../../layers/federation-core/src/index.js';
import {
  asyncApiDocument,
  renderAsyncApiYaml,
  toYaml,
} from '../../layers/federation-core/src/protocol/asyncapi.js';

describe('docs/asyncapi.yaml', () => {
  it('equals what the protocol schemas generate (run `npx tsx docs/asyncapi.gen.ts` after changing them)', () => {
    const committed = readFileSync(new URL('../../docs/asyncapi.yaml', import.meta.url), 'utf8');
    expect(committed).toBe(renderAsyncApiYaml());
  });

  it('describes every command and every event, and every $ref resolves', () => {
    type Node = { [key: string]: Node };
    const doc = asyncApiDocument() as unknown as Node;
    expect(doc.asyncapi).toBe('3.0.0');
    const titles = Object.values(doc.components?.messages ?? {}).map((m) => (m as { title?: string }).title);
    for (const action of COMMAND_ACTIONS) expect(titles).toContain(action);
    for (const event of Object.values(EventType)) expect(titles).toContain(event);
    expect(titles).toEqual(expect.arrayContaining(['reply', 'part']));
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(30);
    for (const ref of refs) {
      const target = ref.split('/').reduce<Node | undefined>((node, key) => node?.[key], doc);
      expect(target, ref).toBeDefined();
    }
  });
});

describe('toYaml', () => {
  it('renders nested objects, arrays and awkward strings as YAML a parser reads back', () => {
    expect(toYaml({ a: [1, { b: 'x: "y"' }], 'c d': {}, e: [] })).toBe(
      'a:\n  - 1\n  - b: "x: \\"y\\""\n"c d": {}\ne: []',
    );
  });
});
