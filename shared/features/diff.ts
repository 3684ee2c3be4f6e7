import { type Expr, type FeatureSetDefinition, fieldsOf } from './definition.ts';
import type { FeatureSet } from './encode.ts';
import { canonicalJson, fingerprintOf } from './fingerprint.ts';
import type { MissingPolicy } from './schema.ts';

/**
 * What a change of the feature definition does, before it lands (`keel features diff`): features added,
 * removed, changed (same name, other expression) and moved, raw fields read or no longer read with their
 * missing-value policy, category changes, and the fingerprints. Plain functions over two definitions.
 */

/** One definition as the diff names it. */
export interface DefinitionRef {
  readonly version: string;
  readonly fingerprint: string;
  readonly count: number;
}

/** A feature: its position in the vector and its expression, readably. */
export interface FeatureEntry {
  readonly name: string;
  readonly index: number;
  readonly expression: string;
}

export interface FeatureChange {
  readonly name: string;
  readonly from: Omit<FeatureEntry, 'name'>;
  readonly to: Omit<FeatureEntry, 'name'>;
}

/** A feature kept whose place among the kept features changed. */
export interface FeatureMove {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

/** A raw field the features read, with what its absence means. */
export interface FieldEntry {
  readonly name: string;
  readonly missing: MissingPolicy;
}

export interface PolicyChange {
  readonly name: string;
  readonly from: MissingPolicy;
  readonly to: MissingPolicy;
}

/** The known values of a categorical field read by either definition. */
export interface CategoryChange {
  readonly field: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** The values both know are listed in another order. */
  readonly reordered: boolean;
}

export interface DefinitionDiff {
  /** null: compared with nothing (no model to compare with); everything is added. */
  readonly from: DefinitionRef | null;
  readonly to: DefinitionRef;
  /** Same fingerprint: nothing differs. */
  readonly identical: boolean;
  readonly features: {
    readonly added: readonly FeatureEntry[];
    readonly removed: readonly FeatureEntry[];
    readonly changed: readonly FeatureChange[];
    readonly moved: readonly FeatureMove[];
  };
  readonly fields: {
    readonly added: readonly FieldEntry[];
    readonly removed: readonly FieldEntry[];
    readonly policyChanged: readonly PolicyChange[];
  };
  readonly categories: readonly CategoryChange[];
}

/** How tightly a form binds: a division with its zero rule, or a comparison, binds loosest. */
const PRECEDENCE = { loose: 1, sum: 2, quotient: 3, atom: 4 } as const;

/** An expression as people write it: `log1p(max(income, 0))`, `orders / (tenure_months + 1) (0 if divisor is 0)`. */
export function formatExpr(expr: Expr): string {
  return format(expr, 0);
}

function format(expr: Expr, outer: number): string {
  const wrap = (text: string, precedence: number) => (precedence < outer ? `(${text})` : text);
  switch (expr.op) {
    case 'field':
      return expr.name;
    case 'const':
      return String(expr.value);
    case 'log1p':
      return `log1p(${format(expr.of, 0)})`;
    case 'max':
      return `max(${format(expr.args[0], 0)}, ${format(expr.args[1], 0)})`;
    case 'add':
      return wrap(
        `${format(expr.args[0], PRECEDENCE.sum)} + ${format(expr.args[1], PRECEDENCE.quotient)}`,
        PRECEDENCE.sum,
      );
    case 'div': {
      return wrap(
        `${format(expr.num, PRECEDENCE.quotient)} / ${format(expr.den, PRECEDENCE.atom)} ` +
          `(${expr.whenZero} if divisor is 0)`,
        PRECEDENCE.loose,
      );
    }
    case 'oneHot':
      return wrap(`${expr.field} == ${JSON.stringify(expr.value)}`, PRECEDENCE.loose);
  }
}

/** A missing-value policy, readably. */
export const formatPolicy = (policy: MissingPolicy): string =>
  policy.kind === 'impute' ? `imputed as ${policy.value} when missing` : 'required';

const refOf = (definition: FeatureSetDefinition): DefinitionRef => ({
  version: definition.version,
  fingerprint: fingerprintOf(definition),
  count: definition.features.length,
});

/** The raw fields the features read, with their policies, in the policy table's order. */
function fieldEntries(definition: FeatureSetDefinition): Map<string, MissingPolicy> {
  const read = new Set<string>();
  for (const feature of definition.features) fieldsOf(feature.expr, read);
  // Every field read has a policy: the interpreter refuses a definition without one.
  return new Map(Object.entries(definition.missing).filter(([name]) => read.has(name)));
}

/** The names of `a` that keep their relative order in `b`: a longest common subsequence. */
function keptInOrder(a: readonly string[], b: readonly string[]): Set<string> {
  const lengths = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lengths[i]![j] =
        a[i] === b[j] ? lengths[i + 1]![j + 1]! + 1 : Math.max(lengths[i + 1]![j]!, lengths[i]![j + 1]!);
    }
  }
  const kept = new Set<string>();
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if (a[i] === b[j]) {
      kept.add(a[i]!);
      i++;
      j++;
    } else if (lengths[i + 1]![j]! >= lengths[i]![j + 1]!) i++;
    else j++;
  }
  return kept;
}

const entriesOf = (definition: FeatureSetDefinition): FeatureEntry[] =>
  definition.features.map((feature, index) => ({
    name: feature.name,
    index,
    expression: formatExpr(feature.expr),
  }));

/**
 * What changes from `from` (a registered version's definition, or nothing) to `to` (this code's).
 * Features are matched by name; a kept feature counts as moved when its place among the kept features
 * changed (the fewest such moves), not when an insertion merely shifts its index.
 */
export function diffDefinitions(
  from: FeatureSetDefinition | undefined,
  to: FeatureSetDefinition,
): DefinitionDiff {
  const before = from ? entriesOf(from) : [];
  const after = entriesOf(to);
  const beforeByName = new Map(before.map((entry) => [entry.name, entry]));
  const afterNames = new Set(after.map((entry) => entry.name));
  const kept = after.filter((entry) => beforeByName.has(entry.name));
  const inOrder = keptInOrder(
    before.filter((entry) => afterNames.has(entry.name)).map((entry) => entry.name),
    kept.map((entry) => entry.name),
  );
  const exprOf = (definition: FeatureSetDefinition | undefined, name: string) =>
    canonicalJson(definition?.features.find((feature) => feature.name === name)?.expr);

  const fieldsBefore = from ? fieldEntries(from) : new Map<string, MissingPolicy>();
  const fieldsAfter = fieldEntries(to);
  const fieldList = (fields: Map<string, MissingPolicy>, without: Map<string, MissingPolicy>) =>
    [...fields].filter(([name]) => !without.has(name)).map(([name, missing]) => ({ name, missing }));

  const categoryFields = [
    ...new Set([...Object.keys(from?.categories ?? {}), ...Object.keys(to.categories)]),
  ];
  const categories = categoryFields.flatMap((field): CategoryChange[] => {
    const was = from?.categories[field] ?? [];
    const now = to.categories[field] ?? [];
    const common = (list: readonly string[], other: readonly string[]) =>
      list.filter((v) => other.includes(v));
    const change = {
      field,
      added: now.filter((value) => !was.includes(value)),
      removed: was.filter((value) => !now.includes(value)),
      reordered: common(was, now).join('\n') !== common(now, was).join('\n'),
    };
    return change.added.length + change.removed.length > 0 || change.reordered ? [change] : [];
  });

  const toRef = refOf(to);
  const fromRef = from ? refOf(from) : null;
  return {
    from: fromRef,
    to: toRef,
    identical: fromRef?.fingerprint === toRef.fingerprint,
    features: {
      added: after.filter((entry) => !beforeByName.has(entry.name)),
      removed: before.filter((entry) => !afterNames.has(entry.name)),
      changed: kept
        .filter((entry) => exprOf(from, entry.name) !== exprOf(to, entry.name))
        .map(({ name, index, expression }) => {
          const was = beforeByName.get(name)!;
          return { name, from: { index: was.index, expression: was.expression }, to: { index, expression } };
        }),
      moved: kept
        .filter((entry) => !inOrder.has(entry.name))
        .map((entry) => ({ name: entry.name, from: beforeByName.get(entry.name)!.index, to: entry.index })),
    },
    fields: {
      added: fieldList(fieldsAfter, fieldsBefore),
      removed: fieldList(fieldsBefore, fieldsAfter),
      policyChanged: [...fieldsAfter].flatMap(([name, now]) => {
        const was = fieldsBefore.get(name);
        return was && canonicalJson(was) !== canonicalJson(now) ? [{ name, from: was, to: now }] : [];
      }),
    },
    categories,
  };
}

/** Whether this code can serve a registered version, and why not. */
export interface Servability {
  readonly servable: boolean;
  /** Why not. */
  readonly reason?: string;
  /** Servable, but a promotion is refused until the online store has a field. */
  readonly note?: string;
}

const plural = (fields: readonly string[]) =>
  `the raw field${fields.length > 1 ? 's' : ''} ${fields.join(', ')}`;

/**
 * Whether a version's features can be computed here: every raw field its definition requires must be
 * one this code's schema validates or one the online store holds (`storeFields`, undefined when no ETL
 * recorded any: promotion then checks this code's schema).
 */
export function servabilityOf(
  set: Pick<FeatureSet, 'required'>,
  codeFields: ReadonlySet<string>,
  storeFields: ReadonlySet<string> | undefined,
): Servability {
  const absent = set.required.filter((field) => !codeFields.has(field) && !storeFields?.has(field));
  if (absent.length > 0) {
    return {
      servable: false,
      reason: `requires ${plural(absent)}, which neither this code's raw schema nor the online store has`,
    };
  }
  const notLoaded = storeFields ? set.required.filter((field) => !storeFields.has(field)) : [];
  return notLoaded.length === 0
    ? { servable: true }
    : {
        servable: true,
        note:
          `the online store has no ${notLoaded.join(', ')} yet: promoting it is refused until ` +
          '`keel etl run` loads a file with it',
      };
}

/** One registered version, as `keel features diff` lists it. */
export interface VersionReport extends Servability {
  readonly version: string;
  readonly champion: boolean;
  /** Its feature set, when metadata.json could be read. */
  readonly featureSet: { readonly version: string; readonly fingerprint: string } | null;
}

/** What `keel features diff` reports. */
export interface FeatureChangeReport {
  readonly model: string;
  /** The version compared with; null when there is none (no champion). */
  readonly against: { readonly version: string; readonly champion: boolean } | null;
  /** Why the comparison is with nothing, when it is. */
  readonly note?: string;
  readonly diff: DefinitionDiff;
  /** The raw fields the online store holds, as the ETL recorded them; null when it recorded none. */
  readonly storeFields: readonly string[] | null;
  readonly versions: readonly VersionReport[];
}

const short = (fingerprint: string) => `${fingerprint.slice(0, 19)}…`;
const row = (label: string, text: string) => `  ${label.padEnd(12)} ${text}`;

/** The report as `keel features diff` prints it. */
export function describeFeatureChange(report: FeatureChangeReport): string {
  const { diff } = report;
  const against = report.against
    ? `${report.against.version}${report.against.champion ? ' (the champion)' : ''}`
    : 'nothing';
  const lines = [
    `${report.model}: this code's feature definition against ${against}`,
    ...(report.note ? [`  ${report.note}`] : []),
    row('definition', `${diff.from?.version ?? '-'} → ${diff.to.version}`),
    row('fingerprint', `${diff.from?.fingerprint ?? '-'} → ${diff.to.fingerprint}`),
    row('features', `${diff.from?.count ?? 0} → ${diff.to.count}`),
  ];
  if (diff.identical) lines.push(`  no change: ${against} was trained on this very definition`);
  const { added, removed, changed, moved } = diff.features;
  lines.push(
    ...added.map((f) => row('added', `[${f.index}] ${f.name} = ${f.expression}`)),
    ...removed.map((f) => row('removed', `[${f.index}] ${f.name} = ${f.expression}`)),
    ...changed.flatMap((f) => [
      row('changed', f.name),
      row('', `  was [${f.from.index}] ${f.from.expression}`),
      row('', `  now [${f.to.index}] ${f.to.expression}`),
    ]),
    ...moved.map((f) => row('moved', `${f.name} [${f.from}] → [${f.to}]`)),
  );
  const store = report.storeFields && new Set(report.storeFields);
  const { fields } = diff;
  if (fields.added.length + fields.removed.length + fields.policyChanged.length > 0) {
    lines.push('raw fields');
    lines.push(
      ...fields.added.map((f) =>
        row(
          'new',
          `${f.name}: ${formatPolicy(f.missing)}` +
            (store && !store.has(f.name) ? '; the online store has none yet' : ''),
        ),
      ),
      ...fields.removed.map((f) => row('no longer', `${f.name} (was ${formatPolicy(f.missing)})`)),
      ...fields.policyChanged.map((f) =>
        row('policy', `${f.name}: ${formatPolicy(f.from)} → ${formatPolicy(f.to)}`),
      ),
    );
  }
  if (diff.categories.length > 0) {
    lines.push('categories');
    lines.push(
      ...diff.categories.map((c) =>
        row(
          c.field,
          [
            ...(c.added.length ? [`+ ${c.added.join(', ')}`] : []),
            ...(c.removed.length ? [`- ${c.removed.join(', ')}`] : []),
            ...(c.reordered ? ['in another order'] : []),
          ].join('; '),
        ),
      ),
    );
  }
  lines.push(
    report.versions.length === 0
      ? 'registered versions: none'
      : 'registered versions (* the champion), servable by this code:',
    ...report.versions.map((v) => {
      const set = v.featureSet ? `${v.featureSet.version.padEnd(8)} ${short(v.featureSet.fingerprint)}` : '-';
      const verdict = v.servable ? `yes${v.note ? ` (${v.note})` : ''}` : `no: ${v.reason}`;
      return `  ${`${v.version}${v.champion ? ' *' : ''}`.padEnd(8)} ${set.padEnd(29)}  ${verdict}`;
    }),
  );
  return lines.join('\n');
}
