/**
 * A YAML document that says where things are: every error names the key
 * path and the line, as a request field (`text: jobs.build.timeout: line 7: ...`)
 * or, for a file the CLI read, as the file (`ci.yaml:7: jobs.build.timeout: ...`).
 * Parsed with the `yaml` package (YAML 1.2); anchors, aliases, tags and
 * several documents are refused: a spec file is plain data.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { ValidationError } from '../jobs/errors.js';

export type YamlPath = ReadonlyArray<string | number>;

export class YamlText {
  private constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    /** The request field the text came in (`text`), or the file's name: for messages. */
    readonly field: string,
    /** Messages as `FILE:LINE: path: ...` (a file) rather than `field: path: line N: ...` (a request field). */
    private readonly isFile: boolean,
  ) {}

  /** Parses `text`; a syntax error, an alias or a tag is a ValidationError naming `field` (or the file) and the line. */
  static parse(text: string, field: string, o: { file?: boolean } = {}): YamlText {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, schema: 'core' });
    const y = new YamlText(doc, lines, field, o.file ?? false);
    const err = doc.errors[0];
    if (err) {
      const what = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      if (y.isFile) throw new ValidationError(`${field}:${err.linePos?.[0].line ?? 1}`, what);
      throw new ValidationError(field, `line ${err.linePos?.[0].line ?? '?'}: ${what}`);
    }
    visit(doc, {
      Alias: (_k, node) => y.fail([], 'anchors and aliases are not allowed', node),
      Node: (_k, node) => {
        if (node.tag && !node.tag.startsWith('tag:yaml.org,2002:')) y.fail([], `tag ${node.tag} is not allowed`, node);
      },
    });
    return y;
  }

  /** The document as plain data (maps as objects). */
  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 0 });
  }

  /** The line a path is on (1-based), if it is in the document. */
  lineOf(path: YamlPath): number | undefined {
    const node = (path.length === 0 ? this.doc.contents : this.doc.getIn(path, true)) as Node | null | undefined;
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.lines.linePos(start).line;
  }

  /** A ValidationError for `path`, naming it and its line. */
  fail(path: YamlPath, detail: string, node?: Node): never {
    const start = node?.range?.[0];
    const line = start !== undefined ? this.lines.linePos(start).line : this.lineOf(path);
    if (this.isFile) {
      const key = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i > 0 ? `.${p}` : p)).join('');
      throw new ValidationError(`${this.field}:${line ?? 1}`, key ? `${key}: ${detail}` : detail);
    }
    const where = path.length > 0 ? `${this.field}: ${path.join('.')}` : this.field;
    throw new ValidationError(where, `${line !== undefined ? `line ${line}: ` : ''}${detail}`);
  }

  /** Each string scalar's value, with its path: what substitution may touch. */
  strings(): Array<{ path: YamlPath; value: string }> {
    const out: Array<{ path: YamlPath; value: string }> = [];
    const walk = (node: unknown, path: Array<string | number>): void => {
      if (isScalar(node) && typeof node.value === 'string') out.push({ path, value: node.value });
      else if (isMap(node)) for (const p of node.items) walk(p.value, [...path, String(isScalar(p.key) ? p.key.value : p.key)]);
      else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
      else if (isAlias(node)) this.fail(path, 'anchors and aliases are not allowed');
    };
    walk(this.doc.contents, []);
    return out;
  }
}
