/**
 * A template: a job spec file (../pipelines/spec-file.ts) with a `params:` map declaring
 * its parameters, and `${{ params.NAME }}` placeholders in string values.
 *
 *     params:
 *       branch: {default: main, description: the branch to build}
 *       sha: {required: true}
 *     name: build-${{ params.branch }}
 *     command: [make, test]
 *     env: {SHA: "${{ params.sha }}"}
 *
 * Checked when stored: the YAML, the declarations, every placeholder naming a
 * declared parameter, and the file with every parameter filled in with a
 * sample. Filled in when submitted: a required parameter not given, or one not
 * declared, is a ValidationError naming `params.NAME`.
 */
import type { TemplateParam } from '../../proto/gen/runmesh/v1/template.js';
import { ValidationError } from '../jobs/errors.js';
import { fillPlaceholders, referencedParams } from './placeholders.js';
import { specsFromFile, type SpecFile } from '../pipelines/spec-file.js';
import { YamlText } from '../pipelines/yaml-text.js';

export const TEMPLATE_LIMITS = {
  textBytes: 256 * 1024,
  params: 64,
  valueChars: 4096,
  descriptionChars: 512,
} as const;

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const DECLARATION_KEYS = new Set(['default', 'required', 'description']);

export interface ParsedTemplate {
  params: TemplateParam[];
  kind: SpecFile['kind'];
  /** How many jobs it makes. */
  jobs: number;
  yaml: YamlText;
}

/** Parses and checks a template's text (the request field `field`). */
export function parseTemplate(text: string, field = 'text'): ParsedTemplate {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > TEMPLATE_LIMITS.textBytes) throw new ValidationError(field, `too large (${size} bytes, limit ${TEMPLATE_LIMITS.textBytes})`);
  if (!text.trim()) throw new ValidationError(field, 'empty');
  const yaml = YamlText.parse(text, field);
  const params = declarations(yaml);
  const declared = new Set(params.map((p) => p.name));
  for (const { path, value } of yaml.strings()) {
    if (path[0] === 'params') continue;
    const unknown = referencedParams(value).find((n) => !declared.has(n));
    if (unknown) yaml.fail(path, `\${{ params.${unknown} }} names a parameter the template does not declare under params`);
  }
  // Filled in with samples, the file must make valid specs (numbers where numbers go are checked at submit).
  const sample = new Map(params.map((p) => [p.name, p.hasDefault ? p.defaultValue : 'x']));
  const file = specsFromFile(substituted(yaml, sample), yaml, { lenientNumbers: true });
  return { params, kind: file.kind, jobs: file.specs.length, yaml };
}

/**
 * The specs the template makes with `given` (field `params` of the request):
 * each declared parameter given or defaulted, none unknown.
 */
export function fillTemplate(t: ParsedTemplate, given: Readonly<Record<string, string>>, name: string): SpecFile {
  const declared = new Map(t.params.map((p) => [p.name, p]));
  for (const [k, v] of Object.entries(given)) {
    if (!declared.has(k)) {
      const known = t.params.map((p) => p.name).join(', ') || 'none';
      throw new ValidationError(`params.${k.slice(0, 64)}`, `template ${name} has no parameter ${k.slice(0, 64)} (it declares: ${known})`);
    }
    if (v.length > TEMPLATE_LIMITS.valueChars)
      throw new ValidationError(`params.${k}`, `longer than ${TEMPLATE_LIMITS.valueChars} characters`);
    if (v.includes('\0')) throw new ValidationError(`params.${k}`, 'contains a NUL byte');
  }
  const values = new Map<string, string>();
  for (const p of t.params) {
    const v = given[p.name] ?? (p.hasDefault ? p.defaultValue : undefined);
    if (v === undefined)
      throw new ValidationError(`params.${p.name}`, `required by template ${name} and not given (--param ${p.name}=VALUE)`);
    values.set(p.name, v);
  }
  return specsFromFile(substituted(t.yaml, values), t.yaml, { lenientNumbers: false });
}

/** The document as data, `params` left out, each string value's placeholders filled in. */
function substituted(yaml: YamlText, values: ReadonlyMap<string, string>): unknown {
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string') return fillPlaceholders(v, values);
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  const data = yaml.toJS();
  if (!data || typeof data !== 'object' || Array.isArray(data)) return data;
  const { params: _declarations, ...body } = data as Record<string, unknown>;
  return fill(body);
}

function declarations(yaml: YamlText): TemplateParam[] {
  const data = yaml.toJS() as Record<string, unknown> | null;
  const raw = data && typeof data === 'object' && !Array.isArray(data) ? data.params : undefined;
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw)) yaml.fail(['params'], 'a map of parameter names to {default, required, description}');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > TEMPLATE_LIMITS.params) yaml.fail(['params'], `more than ${TEMPLATE_LIMITS.params} parameters`);
  return entries.map(([name, d]) => declaration(yaml, name, d));
}

function declaration(yaml: YamlText, name: string, d: unknown): TemplateParam {
  const path = ['params', name];
  if (!PARAM_NAME.test(name))
    yaml.fail(path, `bad parameter name "${name.slice(0, 64)}": letters, digits, _ and -, not starting with a digit`);
  if (d === null) return { name, defaultValue: '', hasDefault: false, required: true, description: '' };
  if (typeof d !== 'object' || Array.isArray(d))
    yaml.fail(path, 'a map: {default: VALUE} or {required: true}, with an optional description');
  const o = d as Record<string, unknown>;
  const extra = Object.keys(o).find((k) => !DECLARATION_KEYS.has(k));
  if (extra) yaml.fail([...path, extra], `unknown key "${extra}" (default, required, description)`);
  const hasDefault = o.default !== undefined && o.default !== null;
  if (hasDefault && typeof o.default === 'object') yaml.fail([...path, 'default'], 'a default is a string, a number or a boolean');
  if (o.required !== undefined && typeof o.required !== 'boolean') yaml.fail([...path, 'required'], 'true or false');
  if (o.required === true && hasDefault) yaml.fail([...path, 'required'], 'a parameter with a default is not required');
  if (o.required === false && !hasDefault) yaml.fail([...path, 'required'], 'a parameter that is not required needs a default');
  if (o.description !== undefined && typeof o.description !== 'string') yaml.fail([...path, 'description'], 'a string');
  const description = typeof o.description === 'string' ? o.description : '';
  if (description.length > TEMPLATE_LIMITS.descriptionChars)
    yaml.fail([...path, 'description'], `longer than ${TEMPLATE_LIMITS.descriptionChars} characters`);
  return { name, defaultValue: hasDefault ? String(o.default) : '', hasDefault, required: !hasDefault, description };
}
