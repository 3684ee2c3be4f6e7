import { describe, expect, it } from 'vitest';
import { containerNodeOptions, imageNodeOptions } from '#local/container-api.ts';

/** The local ECS workers start node with the options the predict image's CMD gives it. */
describe('imageNodeOptions', () => {
  it("reads the predict image's options: source maps, and no memory reducer", () => {
    expect(containerNodeOptions()).toEqual(['--enable-source-maps', '--no-memory-reducer']);
  });

  it('takes the last CMD, as docker does', () => {
    const dockerfile =
      'FROM a AS build\nCMD ["node", "build.mjs"]\nFROM b\nCMD ["node", "--x", "--y=1", "app.mjs"]\n';
    expect(imageNodeOptions(dockerfile)).toEqual(['--x', '--y=1']);
  });

  it.each([
    ['a shell-form CMD', 'FROM b\nCMD node --x app.mjs\n'],
    ['no CMD', 'FROM b\n'],
    ['a CMD that is not node', 'FROM b\nCMD ["deno", "run", "app.ts"]\n'],
  ])('refuses %s, naming what it expects', (_, dockerfile) => {
    expect(() => imageNodeOptions(dockerfile)).toThrow(/exec form \["node", …options, "<script>"\]/);
  });
});
