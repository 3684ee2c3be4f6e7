/**
 * Every configuration change docs/configuration.md allows must deploy as an update. `cdk deploy --all`
 * updates a producing stack before the stacks that import from it, and CloudFormation refuses to
 * remove an export that a deployed stack still imports ("Export … cannot be deleted as it is in use").
 * So for a change A → B, each stack's exports under B must hold every export the stacks import under A.
 * Every ordered pair of the documented configurations is such a change, so switching back is checked too.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENTED_CONFIGS, synthesizeConfig } from '../support/documented-configs.ts';

/** Export names and imported export names of each stack (by stack name) of one configuration. */
interface References {
  readonly exports: Map<string, Set<string>>;
  readonly imports: Map<string, Set<string>>;
}

/** Every `Fn::ImportValue` name anywhere in a template (CDK's cross-stack imports are literal names). */
function importsOf(template: unknown): Set<string> {
  const names = new Set<string>();
  JSON.stringify(template, (key, value) => {
    if (key === 'Fn::ImportValue') names.add(typeof value === 'string' ? value : JSON.stringify(value));
    return value;
  });
  return names;
}

/** The exports and imports of the app's stacks for one configuration. */
function referencesOf(name: string, input: unknown): References {
  const exports = new Map<string, Set<string>>();
  const imports = new Map<string, Set<string>>();
  for (const stack of synthesizeConfig(name, input).stacks) {
    const outputs = Object.values(stack.template.Outputs ?? {}) as { Export?: { Name: string } }[];
    exports.set(stack.stackName, new Set(outputs.flatMap((o) => (o.Export ? [o.Export.Name] : []))));
    imports.set(stack.stackName, importsOf(stack.template));
  }
  return { exports, imports };
}

/** What blocks the update `from` → `to`: each import under `from` whose export `to` no longer has. */
function blockedExports(from: References, to: References): string[] {
  const blocked: string[] = [];
  for (const [consumer, names] of from.imports) {
    for (const name of names) {
      const producer = [...from.exports].find(([, exported]) => exported.has(name))?.[0];
      if (producer === undefined) throw new Error(`${consumer} imports ${name}, which no stack exports`);
      if (!to.exports.get(producer)?.has(name))
        blocked.push(`${producer} drops ${name} (imported by ${consumer})`);
    }
  }
  return blocked;
}

describe('a change between documented configurations', () => {
  const references = new Map<string, References>();
  beforeAll(() => {
    for (const [name, input] of Object.entries(DOCUMENTED_CONFIGS))
      references.set(name, referencesOf(name, input));
  });

  it('finds the imports it checks (the stacks do reference each other through exports)', () => {
    const defaults = references.get('defaults')!;
    expect([...defaults.imports.values()].reduce((n, names) => n + names.size, 0)).toBeGreaterThan(0);
  });

  const names = Object.keys(DOCUMENTED_CONFIGS);
  it.each(names)('from %s to any other keeps every export the stacks import', (from) => {
    const blocked = names
      .filter((to) => to !== from)
      .flatMap((to) =>
        blockedExports(references.get(from)!, references.get(to)!).map((b) => `→ ${to}: ${b}`),
      );
    expect(blocked).toEqual([]);
  });
});
