import { assertValidStage } from '#shared/resources.ts';
import type { AlarmDefinition, CompositeAlarmDefinition, Expression } from './alarm-catalog.ts';

/**
 * The CloudWatch form of a catalog's parts: alarm names, descriptions, metric-math text and composite
 * rules. The monitoring stack puts them in its alarms; the local runtime and `keel alarms` show the
 * same text, so an alarm reads alike in both places.
 */

/** The CloudWatch alarm name of a definition in a deployment stage. */
export function alarmName(stage: string, id: string): string {
  assertValidStage(stage);
  return `keel-${stage}-${id}`;
}

/** CloudWatch's AlarmDescription (at most 1024 characters): what is wrong, then what to do. */
export function alarmDescription(definition: AlarmDefinition | CompositeAlarmDefinition): string {
  const text = `[${definition.severity}] ${definition.description}\nRunbook: ${definition.runbook}`;
  return text.length <= 1024 ? text : `${text.slice(0, 1023)}…`;
}

/** The metric-math text of an expression, e.g. `IF(((FILL(ok, 0) + …) >= 20), …, 0)`. */
export function renderExpression(expression: Expression): string {
  switch (expression.op) {
    case 'metric':
      return expression.id;
    case 'const':
      return String(expression.value);
    case 'abs':
      return `ABS(${renderExpression(expression.of)})`;
    case 'max':
      return `MAX([${expression.args.map(renderExpression).join(', ')}])`;
    case 'fill':
      return `FILL(${expression.id}, ${expression.value})`;
    case 'if':
      return `IF(${renderExpression(expression.condition)}, ${renderExpression(expression.whenTrue)}, ${renderExpression(expression.whenFalse)})`;
    default:
      return `(${renderExpression(expression.left)} ${expression.op} ${renderExpression(expression.right)})`;
  }
}

/** A composite's rule text, alarms referred to by their CloudWatch names. */
export function renderAlarmRule(composite: CompositeAlarmDefinition, nameOf: (id: string) => string): string {
  return composite.anyOf.map((id) => `ALARM("${nameOf(id)}")`).join(' OR ');
}
