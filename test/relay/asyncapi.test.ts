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

describe('limits in the AsyncAPI document', () => {
  it("says what API Gateway's WebSocket limits ask of a client: frames, idle timeout, ping", () => {
    const doc = asyncApiDocument() as { info: { description: string } };
    const text = doc.info.description;
    expect(text).toMatch(/32 KB/);
    expect(text).toMatch(/idle for 10 minutes/);
    expect(text).toMatch(/`ping` whenever it has sent nothing for 5 minutes/);
    expect(text).toMatch(/2 hours/);
  });
});

describe('toYaml', () => {
  it('renders nested objects, arrays and awkward strings as YAML a parser reads back', () => {
    expect(toYaml({ a: [1, { b: 'x: "y"' }], 'c d': {}, e: [] })).toBe(
      'a:\n  - 1\n  - b: "x: \\"y\\""\n"c d": {}\ne: []',
    );
  });
});
