import ts from 'typescript';
import { FEATURE_FIELD_NAMES, FEATURE_SET } from '#shared/features/index.ts';

/** Names that, used as an arithmetic operand, mean someone is computing a feature by hand. */
const FEATURE_WORDS = new Set<string>([
  ...FEATURE_FIELD_NAMES,
  ...FEATURE_SET.names,
  // camelCase spellings of the same fields and features
  ...[...FEATURE_FIELD_NAMES, ...FEATURE_SET.names].map((name) =>
    name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase()),
  ),
]);

const ARITHMETIC = new Set([
  ts.SyntaxKind.PlusToken,
  ts.SyntaxKind.MinusToken,
  ts.SyntaxKind.AsteriskToken,
  ts.SyntaxKind.SlashToken,
  ts.SyntaxKind.PercentToken,
  ts.SyntaxKind.AsteriskAsteriskToken,
]);

/** `target op= value`: only transforming a feature in place counts; `sum += record.income` aggregates. */
const COMPOUND_ASSIGNMENT = new Set([
  ts.SyntaxKind.PlusEqualsToken,
  ts.SyntaxKind.MinusEqualsToken,
  ts.SyntaxKind.AsteriskEqualsToken,
  ts.SyntaxKind.SlashEqualsToken,
]);

export interface Finding {
  readonly line: number;
  readonly text: string;
}

/** The name an operand refers to: `x.total_spend`, `x['orders']`, `orders` or `avgSpend`. */
function operandName(node: ts.Expression): string | undefined {
  let current: ts.Expression = node;
  while (
    ts.isParenthesizedExpression(current) ||
    ts.isNonNullExpression(current) ||
    ts.isAsExpression(current)
  ) {
    current = current.expression;
  }
  if (ts.isIdentifier(current)) return current.text;
  if (ts.isPropertyAccessExpression(current)) return current.name.text;
  if (ts.isElementAccessExpression(current) && ts.isStringLiteral(current.argumentExpression)) {
    return current.argumentExpression.text;
  }
  return undefined;
}

/**
 * Arithmetic on feature fields or features (`a.total_spend / a.orders`, `Math.log1p(income)`), or a
 * declaration named after a feature (`const avgSpend = …`): feature code living outside shared/features.
 */
export function findFeatureArithmetic(source: string, fileName: string): Finding[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const findings: Finding[] = [];
  const report = (node: ts.Node) => {
    const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
    if (findings.at(-1)?.line !== line) findings.push({ line, text: node.getText(file).slice(0, 120) });
  };
  const isFeatureOperand = (node: ts.Expression) => {
    const name = operandName(node);
    return name !== undefined && FEATURE_WORDS.has(name);
  };
  const visit = (node: ts.Node) => {
    if (ts.isBinaryExpression(node) && ARITHMETIC.has(node.operatorToken.kind)) {
      if (isFeatureOperand(node.left) || isFeatureOperand(node.right)) report(node);
    } else if (ts.isBinaryExpression(node) && COMPOUND_ASSIGNMENT.has(node.operatorToken.kind)) {
      if (isFeatureOperand(node.left)) report(node);
    } else if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'Math' &&
      node.arguments.some(isFeatureOperand)
    ) {
      report(node);
    } else if (
      (ts.isVariableDeclaration(node) || ts.isFunctionDeclaration(node)) &&
      node.name &&
      ts.isIdentifier(node.name) &&
      FEATURE_SET.names.some(
        (feature) =>
          !FEATURE_FIELD_NAMES.includes(feature as never) &&
          node.name!.getText(file).toLowerCase().replace(/_/g, '').includes(feature.replace(/_/g, '')),
      )
    ) {
      report(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return findings;
}
