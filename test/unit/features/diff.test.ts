import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  describeFeatureChange,
  diffDefinitions,
  type FeatureChangeReport,
  formatExpr,
  servabilityOf,
} from '#shared/features/diff.ts';
import { type Expr, type FeatureSetDefinition, fingerprintOf } from '#shared/features/index.ts';

/** The frozen reference definition (1.0.0), so these goldens hold whatever this code's definition is. */
const REFERENCE = (
  JSON.parse(
    readFileSync(new URL('../../fixtures/features/reference-1.0.0.json', import.meta.url), 'utf8'),
  ) as { definition: FeatureSetDefinition }
).definition;

const field = (name: string): Expr => ({ op: 'field', name });
const byName = (name: string) => REFERENCE.features.find((f) => f.name === name)!;

/**
 * The change and then some: log_logins added after tickets_per_order, spend_per_month dropped,
 * avg_spend redefined, plan_basic moved to the end, income imputed, plan knows `enterprise`, region's
 * values reordered.
 */
const CHANGED: FeatureSetDefinition = {
  version: '1.1.0',
  features: [
    ...REFERENCE.features
      .filter((f) => !['spend_per_month', 'plan_basic'].includes(f.name))
      .flatMap((f) => {
        if (f.name === 'avg_spend') {
          return [
            {
              name: 'avg_spend',
              expr: {
                op: 'div',
                num: field('total_spend'),
                den: { op: 'add', args: [field('orders'), { op: 'const', value: 1 }] },
                whenZero: 0,
              } satisfies Expr,
            },
          ];
        }
        if (f.name === 'tickets_per_order') {
          return [f, { name: 'log_logins', expr: { op: 'log1p', of: field('logins_30d') } satisfies Expr }];
        }
        return [f];
      }),
    byName('plan_basic'),
  ],
  categories: {
    plan: [...REFERENCE.categories.plan!, 'enterprise'],
    region: ['west', 'north', 'south', 'east', 'central'],
  },
  missing: {
    ...REFERENCE.missing,
    income: { kind: 'impute', value: 0 },
    logins_30d: { kind: 'impute', value: 0 },
  },
};

describe('formatExpr', () => {
  it('writes every form as people read it, with parentheses only where they are needed', () => {
    const expressions = Object.fromEntries(REFERENCE.features.map((f) => [f.name, formatExpr(f.expr)]));
    expect(expressions).toMatchObject({
      age: 'age',
      log_income: 'log1p(max(income, 0))',
      avg_spend: 'total_spend / orders (0 if divisor is 0)',
      orders_per_month: 'orders / max(tenure_months, 1) (0 if divisor is 0)',
      tickets_per_order: 'support_tickets_90d / (orders + 1) (0 if divisor is 0)',
      plan_basic: 'plan == "basic"',
    });
    const ratio: Expr = { op: 'div', num: field('a'), den: field('b'), whenZero: -1 };
    const sum = (x: Expr, y: Expr): Expr => ({ op: 'add', args: [x, y] });
    expect(formatExpr(sum(ratio, { op: 'const', value: 0.5 }))).toBe('(a / b (-1 if divisor is 0)) + 0.5');
    expect(formatExpr(sum(field('a'), sum(field('b'), field('c'))))).toBe('a + (b + c)');
    expect(formatExpr(sum(sum(field('a'), field('b')), field('c')))).toBe('a + b + c');
    expect(formatExpr({ op: 'div', num: ratio, den: ratio, whenZero: 0 })).toBe(
      '(a / b (-1 if divisor is 0)) / (a / b (-1 if divisor is 0)) (0 if divisor is 0)',
    );
    expect(formatExpr({ op: 'log1p', of: ratio })).toBe('log1p(a / b (-1 if divisor is 0))');
    expect(formatExpr(sum({ op: 'oneHot', field: 'plan', value: 'gold' }, field('a')))).toBe(
      '(plan == "gold") + a',
    );
  });
});

describe('diffDefinitions', () => {
  it('lists added, removed, changed and moved features, raw fields, policies, categories and fingerprints', () => {
    expect(diffDefinitions(REFERENCE, CHANGED)).toEqual({
      from: {
        version: '1.0.0',
        fingerprint: 'sha256:355e017c6a5563efa9106cc5d504c291edb2b1fe17a399de76b20cf15940c7ee',
        count: 20,
      },
      to: { version: '1.1.0', fingerprint: fingerprintOf(CHANGED), count: 20 },
      identical: false,
      features: {
        added: [{ name: 'log_logins', index: 11, expression: 'log1p(logins_30d)' }],
        removed: [
          {
            name: 'spend_per_month',
            index: 10,
            expression: 'total_spend / max(tenure_months, 1) (0 if divisor is 0)',
          },
        ],
        changed: [
          {
            name: 'avg_spend',
            from: { index: 8, expression: 'total_spend / orders (0 if divisor is 0)' },
            to: { index: 8, expression: 'total_spend / (orders + 1) (0 if divisor is 0)' },
          },
        ],
        // Only plan_basic moved; the features after the removed one shift but keep their order.
        moved: [{ name: 'plan_basic', from: 12, to: 19 }],
      },
      fields: {
        added: [{ name: 'logins_30d', missing: { kind: 'impute', value: 0 } }],
        removed: [],
        policyChanged: [{ name: 'income', from: { kind: 'required' }, to: { kind: 'impute', value: 0 } }],
      },
      categories: [
        { field: 'plan', added: ['enterprise'], removed: [], reordered: false },
        { field: 'region', added: [], removed: [], reordered: true },
      ],
    });
  });

  it('is empty between a definition and itself, and names fields no longer read', () => {
    const same = diffDefinitions(REFERENCE, structuredClone(REFERENCE));
    expect(same.identical).toBe(true);
    expect(same.features).toEqual({ added: [], removed: [], changed: [], moved: [] });
    expect(same.fields).toEqual({ added: [], removed: [], policyChanged: [] });
    expect(same.categories).toEqual([]);

    const back = diffDefinitions(CHANGED, REFERENCE);
    expect(back.fields.removed).toEqual([{ name: 'logins_30d', missing: { kind: 'impute', value: 0 } }]);
    expect(back.features.moved).toEqual([{ name: 'plan_basic', from: 19, to: 12 }]);
  });

  it('against nothing, everything is added', () => {
    const diff = diffDefinitions(undefined, REFERENCE);
    expect(diff.from).toBeNull();
    expect(diff.identical).toBe(false);
    expect(diff.features.added.map((f) => f.name)).toEqual(REFERENCE.features.map((f) => f.name));
    expect(diff.fields.added.map((f) => f.name)).toEqual(Object.keys(REFERENCE.missing));
    expect(diff.categories.map((c) => [c.field, c.added])).toEqual([
      ['plan', ['basic', 'standard', 'premium']],
      ['region', ['north', 'south', 'east', 'west', 'central']],
    ]);
  });
});

describe('servabilityOf', () => {
  const code = new Set(['age', 'income']);
  it('refuses a version requiring a field neither the code nor the store has, and notes one to load', () => {
    expect(servabilityOf({ required: ['age', 'income'] }, code, undefined)).toEqual({ servable: true });
    expect(servabilityOf({ required: ['age', 'logins_30d'] }, code, undefined)).toEqual({
      servable: false,
      reason:
        "requires the raw field logins_30d, which neither this code's raw schema nor the online store has",
    });
    // A field only the store has (loaded by newer code) is enough to serve.
    expect(servabilityOf({ required: ['logins_30d'] }, code, new Set(['logins_30d']))).toEqual({
      servable: true,
    });
    expect(servabilityOf({ required: ['age', 'income'] }, code, new Set(['age']))).toEqual({
      servable: true,
      note: 'the online store has no income yet: promoting it is refused until `keel etl run` loads a file with it',
    });
    expect(servabilityOf({ required: ['x', 'y'] }, code, new Set()).reason).toMatch(
      /^requires the raw fields x, y,/,
    );
  });
});

describe('describeFeatureChange', () => {
  const report: FeatureChangeReport = {
    model: 'churn',
    against: { version: 'v3', champion: true },
    diff: diffDefinitions(REFERENCE, CHANGED),
    storeFields: ['age', 'income'],
    versions: [
      {
        version: 'v1',
        champion: false,
        featureSet: { version: '0.9.0', fingerprint: `sha256:${'a'.repeat(64)}` },
        servable: false,
        reason: 'was registered without its feature definition',
      },
      {
        version: 'v3',
        champion: true,
        featureSet: { version: '1.0.0', fingerprint: fingerprintOf(REFERENCE) },
        servable: true,
      },
      { version: 'v4', champion: false, featureSet: null, servable: false, reason: 'metadata.json: bad' },
    ],
  };

  it('prints the change, then every registered version and whether this code serves it', () => {
    expect(describeFeatureChange(report)).toBe(
      [
        "churn: this code's feature definition against v3 (the champion)",
        '  definition   1.0.0 → 1.1.0',
        `  fingerprint  sha256:355e017c6a5563efa9106cc5d504c291edb2b1fe17a399de76b20cf15940c7ee → ${fingerprintOf(CHANGED)}`,
        '  features     20 → 20',
        '  added        [11] log_logins = log1p(logins_30d)',
        '  removed      [10] spend_per_month = total_spend / max(tenure_months, 1) (0 if divisor is 0)',
        '  changed      avg_spend',
        '                 was [8] total_spend / orders (0 if divisor is 0)',
        '                 now [8] total_spend / (orders + 1) (0 if divisor is 0)',
        '  moved        plan_basic [12] → [19]',
        'raw fields',
        '  new          logins_30d: imputed as 0 when missing; the online store has none yet',
        '  policy       income: required → imputed as 0 when missing',
        'categories',
        '  plan         + enterprise',
        '  region       in another order',
        'registered versions (* the champion), servable by this code:',
        '  v1       0.9.0    sha256:aaaaaaaaaaaa…  no: was registered without its feature definition',
        '  v3 *     1.0.0    sha256:355e017c6a55…  yes',
        '  v4       -                              no: metadata.json: bad',
      ].join('\n'),
    );
  });

  it('says when there is nothing to compare with, or nothing changed', () => {
    const none = describeFeatureChange({
      ...report,
      against: null,
      note: 'churn has no champion: everything is added',
      diff: diffDefinitions(undefined, REFERENCE),
      versions: [],
    });
    expect(none.split('\n').slice(0, 5)).toEqual([
      "churn: this code's feature definition against nothing",
      '  churn has no champion: everything is added',
      '  definition   - → 1.0.0',
      `  fingerprint  - → ${fingerprintOf(REFERENCE)}`,
      '  features     0 → 20',
    ]);
    expect(none).toContain('  added        [19] region_central = region == "central"');
    expect(none).toContain('  new          support_tickets_90d: imputed as 0 when missing');
    expect(none.endsWith('registered versions: none')).toBe(true);
    const same = describeFeatureChange({ ...report, diff: diffDefinitions(REFERENCE, REFERENCE) });
    expect(same).toContain('  no change: v3 (the champion) was trained on this very definition');
    expect(same).not.toContain('raw fields');
  });
});
