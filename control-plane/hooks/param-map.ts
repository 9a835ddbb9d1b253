/**
 * A hook's parameter map: template parameter → a dotted path into the JSON
 * payload (`after`, `repository.full_name`, `commits.0.id`; a leading `$.`
 * is allowed, as in `$.ref`). A string, number or boolean found there is the
 * value; a missing field, or an object, is refused naming the path.
 */
import { NamedError } from '../../proto/cause.js';
import { ValidationError } from '../jobs/errors.js';

const PATH = /^(\$\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const PARAM = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const MAX_MAPPED = 64;

/** Parses `sha=$.after,branch=$.ref` (the CLI's flag) into a map; ValidationError naming the entry. */
export function parseParamMap(text: string, field = 'param_map'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter((p) => p.trim())) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ValidationError(field, `"${part.slice(0, 80)}" is not PARAM=PATH`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return checkParamMap(out, field);
}

/** Checks every entry's parameter name and path. */
export function checkParamMap(map: Record<string, string>, field = 'param_map'): Record<string, string> {
  const entries = Object.entries(map);
  if (entries.length > MAX_MAPPED) throw new ValidationError(field, `more than ${MAX_MAPPED} entries`);
  for (const [param, path] of entries) {
    if (!PARAM.test(param)) throw new ValidationError(`${field}.${param.slice(0, 64)}`, 'not a parameter name');
    if (!PATH.test(path) || path.length > 256)
      throw new ValidationError(`${field}.${param}`, `"${path.slice(0, 80)}" is not a dotted path such as $.after or repository.name`);
  }
  return map;
}

/** The parameters `map` takes from `payload`; a MissingFieldError naming the first path that finds no value. */
export function mapParams(map: Readonly<Record<string, string>>, payload: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [param, path] of Object.entries(map)) {
    const v = lookup(payload, path);
    if (typeof v === 'string') out[param] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[param] = String(v);
    else throw new MissingFieldError(path, v === undefined || v === null ? 'missing' : 'not a string, number or boolean');
  }
  return out;
}

export class MissingFieldError extends NamedError {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`payload field ${path}: ${detail}`);
  }
}

function lookup(payload: unknown, path: string): unknown {
  let at: unknown = payload;
  for (const part of path.replace(/^\$\./, '').split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = Object.hasOwn(at, part) ? (at as Record<string, unknown>)[part] : undefined;
  }
  return at;
}
