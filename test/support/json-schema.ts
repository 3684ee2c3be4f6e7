/**
 * A validator for the JSON Schema subset the OpenAPI document uses (draft 4 / OpenAPI 3.0 schema
 * objects), for tests: returns every violation as `path: problem`. A keyword it does not know is itself
 * reported, so a schema it cannot fully check never passes by accident.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['title', 'description', 'default', 'example', 'format', '$schema']);

/** Follows a local `#/a/b` reference inside `root`; throws when it does not resolve. */
export function resolveRef(root: unknown, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`non-local $ref ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !(key in node))
      throw new Error(`$ref ${ref} does not resolve`);
    node = (node as Record<string, unknown>)[key];
  }
  return node as Schema;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

export function validateJson(root: unknown, schema: Schema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  const fail = (message: string) => errors.push(`${path}: ${message}`);
  for (const [keyword, arg] of Object.entries(schema)) {
    switch (keyword) {
      case '$ref':
        errors.push(...validateJson(root, resolveRef(root, arg as string), value, path));
        break;
      case 'type': {
        const actual = typeOf(value);
        if (!(actual === arg || (arg === 'number' && actual === 'integer')))
          fail(`is ${actual}, expected ${arg}`);
        break;
      }
      case 'enum':
        if (!(arg as unknown[]).some((v) => v === value))
          fail(`is ${JSON.stringify(value)}, not one of ${JSON.stringify(arg)}`);
        break;
      case 'anyOf':
      case 'oneOf': {
        const passing = (arg as Schema[]).filter(
          (s) => validateJson(root, s, value, path).length === 0,
        ).length;
        if (keyword === 'anyOf' ? passing === 0 : passing !== 1)
          fail(`matches ${passing} of the ${keyword} schemas`);
        break;
      }
      case 'allOf':
        for (const s of arg as Schema[]) errors.push(...validateJson(root, s, value, path));
        break;
      case 'properties':
        if (typeOf(value) === 'object')
          for (const [name, s] of Object.entries(arg as Record<string, Schema>))
            if (name in (value as object))
              errors.push(
                ...validateJson(root, s, (value as Record<string, unknown>)[name], `${path}.${name}`),
              );
        break;
      case 'required':
        if (typeOf(value) === 'object')
          for (const name of arg as string[])
            if (!(name in (value as object))) fail(`misses required ${name}`);
        break;
      case 'additionalProperties':
        if (typeOf(value) === 'object') {
          const known = Object.keys((schema.properties as object | undefined) ?? {});
          for (const [name, v] of Object.entries(value as object)) {
            if (known.includes(name)) continue;
            if (arg === false) fail(`has unexpected property ${name}`);
            else if (typeof arg === 'object')
              errors.push(...validateJson(root, arg as Schema, v, `${path}.${name}`));
          }
        }
        break;
      case 'items':
        if (Array.isArray(value))
          value.forEach((v, i) => {
            errors.push(...validateJson(root, arg as Schema, v, `${path}[${i}]`));
          });
        break;
      case 'minItems':
      case 'maxItems':
        if (
          Array.isArray(value) &&
          (keyword === 'minItems' ? value.length < (arg as number) : value.length > (arg as number))
        )
          fail(`has ${value.length} items (${keyword} ${arg})`);
        break;
      case 'minimum':
      case 'maximum':
        if (
          typeof value === 'number' &&
          (keyword === 'minimum' ? value < (arg as number) : value > (arg as number))
        )
          fail(`${value} is beyond ${keyword} ${arg}`);
        break;
      case 'minLength':
      case 'maxLength':
        if (
          typeof value === 'string' &&
          (keyword === 'minLength' ? value.length < (arg as number) : value.length > (arg as number))
        )
          fail(`length ${value.length} is beyond ${keyword} ${arg}`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(arg as string, 'u').test(value))
          fail(`does not match ${arg}`);
        break;
      default:
        if (!ANNOTATIONS.has(keyword)) fail(`unsupported keyword ${keyword}`);
    }
  }
  return errors;
}
