// The `{{name}}` templates of the generic HTTP target. Small on purpose: a template library would
// bring expressions, helpers and prototype lookups, and a config file must not be able to reach
// any of those. Names are looked up in a flat map of known values, never by walking objects.
import { WogateError } from '../domain/index.js';

export type TemplateValue = string | number | boolean;
/** Flat `name → value` lookup, e.g. `grant.id → "g-1"`. Built per call; see `HttpTarget`. */
export type TemplateValues = ReadonlyMap<string, TemplateValue>;

/** Names that, anywhere in a dotted path, would reach into an object's prototype machinery. */
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const SEGMENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$|^[0-9]+$/;

type Part = { readonly lit: string } | { readonly name: string };

export interface CompiledString {
  readonly source: string;
  readonly parts: readonly Part[];
  /** Set when the whole template is exactly one placeholder: a JSON leaf then keeps the value's type. */
  readonly only?: string;
}

export type CompiledJson =
  | { readonly t: 'const'; readonly v: null | boolean | number }
  | { readonly t: 'str'; readonly s: CompiledString }
  | { readonly t: 'arr'; readonly items: readonly CompiledJson[] }
  | { readonly t: 'obj'; readonly entries: readonly (readonly [string, CompiledJson])[] };

/** Thrown while rendering: the value exists but cannot be put where the template puts it. */
export class TemplateValueError extends Error {
  override readonly name = 'TemplateValueError';
}

/** Checks a dotted path (`data.id`) once, at construction, so lookups never meet a forbidden name. */
export function compilePath(path: string, where: string): readonly string[] {
  const segs = path.split('.');
  for (const s of segs) {
    if (FORBIDDEN.has(s)) throw new WogateError('CONFIG_INVALID', `${where}: "${path}" uses the forbidden name "${s}"`);
    if (!SEGMENT.test(s)) throw new WogateError('CONFIG_INVALID', `${where}: "${path}" is not a dotted path of names (a.b.c)`);
  }
  return segs;
}

/**
 * Parses `text` into literal parts and placeholders; `check` says what is wrong with a name here, if anything.
 * Anything that looks like a placeholder but is not a valid, allowed one fails now, so a typo in
 * config stops the daemon at start rather than failing every revoke later.
 */
export type NameCheck = (name: string) => string | undefined;

export function compileString(text: string, where: string, check: NameCheck): CompiledString {
  const parts: Part[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open < 0) {
      parts.push({ lit: text.slice(i) });
      break;
    }
    if (open > i) parts.push({ lit: text.slice(i, open) });
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new WogateError('CONFIG_INVALID', `${where}: template ${JSON.stringify(text)} has "{{" without a closing "}}"`);
    const name = text.slice(open + 2, close).trim();
    if (name === '') throw new WogateError('CONFIG_INVALID', `${where}: template ${JSON.stringify(text)} has an empty placeholder`);
    compilePath(name, `${where}: template ${JSON.stringify(text)}: placeholder {{${name}}}`);
    const problem = check(name);
    if (problem) throw new WogateError('CONFIG_INVALID', `${where}: template ${JSON.stringify(text)}: placeholder {{${name}}} ${problem}`);
    parts.push({ name });
    i = close + 2;
  }
  const first = parts[0];
  return parts.length === 1 && first && 'name' in first ? { source: text, parts, only: first.name } : { source: text, parts };
}

/** Compiles a JSON body template: string leaves become templates; only plain data is accepted. */
export function compileJson(value: unknown, where: string, check: NameCheck, depth = 0): CompiledJson {
  // YAML aliases can build deep or even cyclic structures; a body is never legitimately this deep.
  if (depth > 32) throw new WogateError('CONFIG_INVALID', `${where}: body is nested more than 32 levels deep`);
  if (value === null || typeof value === 'boolean') return { t: 'const', v: value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new WogateError('CONFIG_INVALID', `${where}: ${value} is not a JSON number`);
    return { t: 'const', v: value };
  }
  if (typeof value === 'string') return { t: 'str', s: compileString(value, where, check) };
  if (Array.isArray(value)) return { t: 'arr', items: value.map((v, i) => compileJson(v, `${where}[${i}]`, check, depth + 1)) };
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new WogateError('CONFIG_INVALID', `${where}: body must be plain JSON data`);
    const entries = Object.keys(value).map((k): [string, CompiledJson] => {
      if (FORBIDDEN.has(k)) throw new WogateError('CONFIG_INVALID', `${where}: body key "${k}" is forbidden`);
      return [k, compileJson((value as Record<string, unknown>)[k], `${where}.${k}`, check, depth + 1)];
    });
    return { t: 'obj', entries };
  }
  throw new WogateError('CONFIG_INVALID', `${where}: body must be plain JSON data (found ${typeof value})`);
}

function valueOf(values: TemplateValues, name: string, where: string): TemplateValue {
  const v = values.get(name);
  if (v === undefined) throw new TemplateValueError(`${where}: {{${name}}} has no value for this call`);
  return v;
}

function render(c: CompiledString, values: TemplateValues, where: string, each: (v: string, name: string) => string): string {
  return c.parts.map((p) => ('lit' in p ? p.lit : each(String(valueOf(values, p.name, where)), p.name))).join('');
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * Renders a URL path template, percent-encoding every substituted value so it stays inside its
 * path segment or query value. An empty value or a lone `.`/`..` segment is refused: the first
 * would address the parent collection, the second is resolved away by the URL parser (even when
 * percent-encoded), and either way the call would reach a different resource than intended.
 */
export function renderUrl(c: CompiledString, values: TemplateValues, where: string): string {
  const out = render(c, values, where, (v, name) => {
    if (v === '') throw new TemplateValueError(`${where}: {{${name}}} is empty, which would change which resource the URL names`);
    try {
      return encodeURIComponent(v);
    } catch {
      // A lone UTF-16 surrogate has no UTF-8 form, so it has no percent-encoding either.
      throw new TemplateValueError(`${where}: {{${name}}} is not well-formed Unicode`);
    }
  });
  const path = out.split(/[?#]/, 1)[0] ?? '';
  if (path.split('/').some((s) => DOT_SEGMENT.test(s))) {
    throw new TemplateValueError(`${where}: a substituted value makes a "." or ".." path segment`);
  }
  return out;
}

/** What Node accepts in a header value; CR and LF matter most, as they would split the header. */
export const BAD_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** Renders a header value, refusing what would split the header or make Node throw mid-call. */
export function renderHeader(c: CompiledString, values: TemplateValues, where: string): string {
  return render(c, values, where, (v, name) => {
    if (BAD_HEADER_CHAR.test(v)) throw new TemplateValueError(`${where}: the value of {{${name}}} contains CR, LF or another character not allowed in a header`);
    return v;
  });
}

export function renderJson(c: CompiledJson, values: TemplateValues, where: string): unknown {
  switch (c.t) {
    case 'const':
      return c.v;
    case 'str':
      return c.s.only !== undefined ? valueOf(values, c.s.only, where) : render(c.s, values, where, (v) => v);
    case 'arr':
      return c.items.map((x, i) => renderJson(x, values, `${where}[${i}]`));
    case 'obj':
      // fromEntries defines own properties, so even a key like "__proto__" could not set a prototype.
      return Object.fromEntries(c.entries.map(([k, v]) => [k, renderJson(v, values, `${where}.${k}`)]));
  }
}

/** Reads a compiled dotted path from parsed JSON, through own properties of objects and arrays only. */
export function readPath(root: unknown, path: readonly string[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^[0-9]+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}
