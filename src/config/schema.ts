import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { WogateError, type ErrorCode } from '../domain/index.js';

/** One thing wrong with a file: where (JSON pointer, and line/col when known) and what was expected. */
export interface Problem {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly col?: number;
  /** Set when problems from several files are reported together. */
  readonly file?: string;
}

/** `key`: point at the key of the last segment rather than its value (for properties that should not be there). */
export type Locate = (pointer: string, opts?: { key?: boolean }) => { line: number; col: number } | undefined;

export interface ParsedYaml {
  readonly data: unknown;
  /** Line and column of the node a JSON pointer names, or of its nearest existing ancestor. */
  readonly locate: Locate;
}

let root: string | undefined;

/**
 * The directory holding package.json. Found by walking up, so the same code finds config/schemas
 * whether it runs from src/ under tsx or from dist/ after a build.
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new WogateError('INTERNAL', `no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export function schemaPath(name: string): string {
  return path.join(packageRoot(), 'config', 'schemas', name);
}

/**
 * Parses one YAML document. Duplicate keys, several documents, unknown tags and syntax errors are
 * all refused, each reported as file:line:col, because a config that means something other than
 * what its author sees is worse than one that does not load.
 */
export function parseYaml(text: string, file: string, code: ErrorCode): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: Problem[] = [...doc.errors, ...doc.warnings].map((e) => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    const what = e.code === 'DUPLICATE_KEY' ? `duplicate key "${keyAt(text, e.pos[0])}"` : e.message;
    return { path: '', message: `YAML: ${what}`, line, col };
  });
  if (problems.length > 0) throw problemsError(code, file, problems, 'is not valid YAML');
  let data: unknown;
  try {
    // The alias limit stops "billion laughs" documents from expanding without bound.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw problemsError(code, file, [{ path: '', message: `YAML: ${e instanceof Error ? e.message : String(e)}` }], 'is not valid YAML');
  }
  const locate: Locate = (pointer, opts) => {
    const at = nodeAt(doc.contents, pointer, opts?.key ?? false);
    return at === undefined ? undefined : lineCounter.linePos(at);
  };
  return { data, locate };
}

/** parseYaml for callers that need only the data. */
export function parseYamlText(text: string, file: string, code: ErrorCode): unknown {
  return parseYaml(text, file, code).data;
}

/** yaml marks a duplicate key by its first character only; the message should name all of it. */
function keyAt(text: string, offset: number): string {
  const m = /^(?:"([^"\n]*)"|'([^'\n]*)'|([^:\n]*?))\s*:/.exec(text.slice(offset));
  return (m?.[1] ?? m?.[2] ?? m?.[3] ?? text.slice(offset, offset + 1)) || text.slice(offset, offset + 1);
}

function nodeAt(contents: unknown, pointer: string, key: boolean): number | undefined {
  let node: unknown = contents;
  let offset = isNode(node) ? node.range?.[0] : undefined;
  const segs = splitPointer(pointer);
  for (const [i, seg] of segs.entries()) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === seg);
      if (!pair) break;
      if (key && i === segs.length - 1 && isNode(pair.key)) return pair.key.range?.[0] ?? offset;
      // An empty value (`key:`) has no useful range of its own; the key has.
      offset = (isNode(pair.value) && pair.value.range?.[0]) || (isNode(pair.key) ? pair.key.range?.[0] : offset);
      next = pair.value;
    } else if (isSeq(node)) {
      next = node.items[Number(seg)];
      if (next === undefined) break;
      if (isNode(next) && next.range) offset = next.range[0];
    } else break;
    node = next;
  }
  return offset;
}

function splitPointer(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
// ajv-formats is CommonJS: under NodeNext the default import is module.exports, whose .default is the plugin.
ajvFormats.default(ajv);
// Annotations for readers of error messages: x-expect says in words what a pattern or format
// means, x-hint adds why its constraints exist. Neither changes what validates.
ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });

const loaded = new Set<string>();

/**
 * The validator for `name` ("policy.schema.json") or a definition inside it
 * ("register.schema.json#/$defs/assetsFile"), from config/schemas.
 */
export function validator(ref: string): ValidateFunction {
  const [name = '', fragment] = ref.split('#');
  const file = schemaPath(name);
  if (!loaded.has(file)) {
    const schema = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    ajv.addSchema(schema, file);
    loaded.add(file);
  }
  const schema = ajv.getSchema(file) as ValidateFunction;
  if (!fragment) return schema;
  const id = (schema.schema as { $id?: string }).$id;
  const v = id ? ajv.getSchema(`${id}#${fragment}`) : undefined;
  if (!v) throw new WogateError('INTERNAL', `schema ${ref}: no definition at #${fragment} (the schema needs an $id)`);
  return v;
}

/** Every way `data` breaks the schema, as human messages. Empty when valid. */
export function schemaProblems(ref: string, data: unknown, locate?: Locate): Problem[] {
  const validate = validator(ref);
  if (validate(data)) return [];
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of validate.errors ?? []) {
    const p = describe(e);
    if (!p) continue;
    const isKey = e.keyword === 'additionalProperties';
    const key = `${p.path}\0${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pos = locate?.(p.path, { key: isKey });
    out.push(pos ? { ...p, ...pos } : p);
  }
  return out.sort(byPosition);
}

/** For Array.sort: document order where positions are known, the rest after, otherwise stable. */
export function byPosition(a: Problem, b: Problem): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.col ?? 0) - (b.col ?? 0) || 0;
}

/** Throws `code` naming the file, each JSON path and what was expected, when `data` breaks the schema. */
export function validateWith(ref: string, data: unknown, file: string, code: ErrorCode, locate?: Locate): void {
  const problems = schemaProblems(ref, data, locate);
  if (problems.length > 0) throw problemsError(code, file, problems);
}

/** One error for all of a file's problems: the message lists each as `file:line:col: /path: message`. */
export function problemsError(code: ErrorCode, file: string, problems: readonly Problem[], headline = 'is invalid'): WogateError {
  const lines = problems.map((p) => formatProblem(p.file ?? file, p));
  const message = lines.length === 1 ? (lines[0] as string) : `${file} ${headline} (${lines.length} problems):\n  ${lines.join('\n  ')}`;
  return new WogateError(code, message, { file, errors: problems });
}

export function formatProblem(file: string, p: Problem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.col ?? 1}` : file;
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

function describe(e: ErrorObject): Problem | undefined {
  const parent = (e.parentSchema ?? {}) as { 'x-expect'?: string; 'x-hint'?: string; properties?: Record<string, unknown> };
  const params = e.params as Record<string, unknown>;
  // Echoing the offending value helps with typos, but a config holds secrets, and a secret
  // pasted where a reference belongs fails a pattern. So values are shown only where the schema
  // says what the field holds (x-expect) or the field is a keyword (enum, const) or a number,
  // and never for writeOnly fields; elsewhere only the kind of value.
  const secret = (parent as { writeOnly?: boolean }).writeOnly === true;
  const got = e.data === undefined || secret ? '' : ` (got ${show(e.data)})`;
  const gotKind = e.data === undefined ? '' : ` (got ${kind(e.data)})`;
  const gotIfExplained = parent['x-expect'] ? got : '';
  let at = e.instancePath;
  let message: string;
  switch (e.keyword) {
    case 'required':
      at = `${at}/${String(params.missingProperty)}`;
      message = 'is required';
      break;
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      at = `${at}/${escape(name)}`;
      const allowed = Object.keys(parent.properties ?? {});
      const near = closest(name, allowed);
      message = `unknown property "${name}"${near ? ` (did you mean "${near}"?)` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`;
      break;
    }
    case 'enum':
      message = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}${got}`;
      break;
    case 'const':
      message = `must be ${show(params.allowedValue)}${got}`;
      break;
    case 'type':
      message = `must be ${article(String(params.type))}${gotKind}`;
      break;
    case 'pattern':
      message = `${parent['x-expect'] ? `must be ${parent['x-expect']}` : `must match ${String(params.pattern)}`}${gotIfExplained}`;
      break;
    case 'format':
      message = `${parent['x-expect'] ? `must be ${parent['x-expect']}` : `must be a valid ${String(params.format)}`}${gotIfExplained}`;
      break;
    case 'minItems':
    case 'minLength':
    case 'minProperties':
      message = params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} ${unit(e.keyword)}`;
      break;
    case 'maxItems':
    case 'maxLength':
    case 'maxProperties':
      message = `must have at most ${String(params.limit)} ${unit(e.keyword)}`;
      break;
    case 'minimum':
      message = `must be at least ${String(params.limit)}${got}`;
      break;
    case 'maximum':
      message = `must be at most ${String(params.limit)}${got}`;
      break;
    case 'exclusiveMinimum':
      message = `must be more than ${String(params.limit)}${got}`;
      break;
    case 'exclusiveMaximum':
      message = `must be less than ${String(params.limit)}${got}`;
      break;
    case 'uniqueItems':
      message = `must not repeat an item (items ${String(params.j)} and ${String(params.i)} are the same)`;
      break;
    case 'if':
      // The failing `then`/`else` branch reports the actual problem.
      return undefined;
    default:
      message = parent['x-expect'] ? `must be ${parent['x-expect']}` : (e.message ?? `fails ${e.keyword}`);
  }
  // A wrong type is its own story; the hint explains the constraint, not the type.
  if (parent['x-hint'] && e.keyword !== 'type') message += `: ${parent['x-hint']}`;
  return { path: at, message };
}

function unit(keyword: string): string {
  return keyword.endsWith('Items') ? 'items' : keyword.endsWith('Length') ? 'characters' : 'properties';
}

function article(type: string): string {
  const word = type.replace(/,/g, ' or ');
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

function escape(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'boolean') return String(v);
  return typeof v === 'number' ? 'a number' : 'a string';
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The allowed name a typo most likely meant, if one is close enough to suggest. */
function closest(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const a of allowed) {
    const d = distance(name.toLowerCase(), a.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [a, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** Edit distance counting a swap of neighbours as one edit ("prot" is one edit from "port"). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}
