import fs from 'node:fs';
import path from 'node:path';
import {
  isWogateError,
  parseDuration,
  WogateError,
  type CanonicalStatus,
  type Criticality,
  type Entitlement,
  type OrderType,
  type Policy,
  type ResourceKind,
  type PolicySet,
  type Rule,
  type RuleMatch,
} from '../domain/index.js';
import { tryCanonicalId } from '../domain/ids.js';
import { byPosition, formatProblem, parseYaml, problemsError, schemaProblems, type Locate, type Problem } from './schema.js';

const SCHEMA = 'policy.schema.json';
const HOUR = 3_600_000;
const LIMITS = { leadTime: 24 * HOUR, grace: 24 * HOUR, maxDuration: 30 * 24 * HOUR } as const;
const LIMIT_TEXT = { leadTime: '24h', grace: '24h', maxDuration: '30d' } as const;

/**
 * Statuses a rule may list but almost never should: access would outlive the work, or begin
 * before anyone looked at the order. Allowed, because a site may have its reasons, but said out loud.
 */
const RISKY_STATUSES: Partial<Record<CanonicalStatus, string>> = {
  draft: 'access would start before the order is even submitted for approval',
  completed: 'access would continue after the work is over',
  closed: 'access would continue after the work is over',
  cancelled: 'access would continue for work that was called off',
};

export interface PolicyLoadOptions {
  /**
   * Target ids from the config, each with the kinds of resource it holds; when given, a rule
   * granting on any other target, or a kind its target can't hold, is an error.
   */
  readonly knownTargets?: ReadonlyMap<string, readonly ResourceKind[]>;
  /** Source ids from the config; when given, a rule matching on any other source is an error. */
  readonly knownSources?: readonly string[];
}

interface RawRule {
  id: string;
  description?: string;
  match: RuleMatch;
  require: { statuses: CanonicalStatus[]; minApprovals?: number; approverRoles?: string[]; reapproveOnWiden?: boolean; leadTime?: string; grace?: string; maxDuration: string };
  grant: RawEntitlement[];
}
interface RawEntitlement {
  type?: Entitlement['type'];
  target: string;
  ports?: number[];
  groups?: string[];
  safes?: string[];
  accessLevels?: string[];
  account?: string;
}
interface RawPolicy {
  metadata: { name: string; description?: string };
  rules: RawRule[];
}

interface Checked {
  readonly policy?: Policy;
  readonly problems: Problem[];
  readonly warnings: string[];
  readonly locate?: Locate;
}

/**
 * Every *.yaml and *.yml file directly in `dir`, in file-name order (so evaluation order does not
 * depend on the file system). Throws POLICY_INVALID listing every problem in every file.
 */
export function loadPolicies(dir: string, opts: PolicyLoadOptions = {}): { policySet: PolicySet; warnings: string[] } {
  let names: string[];
  try {
    names = fs
      .readdirSync(dir, { withFileTypes: true })
      // Dot files are editor backups and lock files, not policies someone meant to deploy.
      .filter((e) => !e.isDirectory() && /\.ya?ml$/.test(e.name) && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (e) {
    throw new WogateError('POLICY_INVALID', `${dir}: cannot read the policy directory: ${errno(e)}`, { file: dir, errors: [{ path: '', message: `cannot read: ${errno(e)}` }] });
  }
  if (names.length === 0) {
    return { policySet: { policies: [] }, warnings: [`no policies: everything is denied (${dir} has no *.yaml or *.yml files)`] };
  }

  const policies: Policy[] = [];
  const warnings: string[] = [];
  const problems: Problem[] = [];
  const firstFileFor = new Map<string, string>();
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file, path: '', message: `cannot read: ${errno(e)}` });
      continue;
    }
    const checked = check(text, file, opts);
    const own = [...checked.problems];
    const policy = checked.policy;
    if (policy) {
      const first = firstFileFor.get(policy.name);
      if (first !== undefined) {
        own.push(at(checked.locate, '/metadata/name', `policy name "${policy.name}" is already used by ${first}; names must be unique across files`));
      } else firstFileFor.set(policy.name, file);
    }
    problems.push(...own.map((p) => ({ ...p, file })));
    warnings.push(...checked.warnings);
    if (policy && own.length === 0) policies.push(policy);
  }
  if (problems.length > 0) throw combined(dir, problems);
  return { policySet: { policies }, warnings };
}

/** One policy file's text; `file` is used in messages. Throws POLICY_INVALID listing every problem. */
export function loadPolicyText(text: string, file: string, opts: PolicyLoadOptions = {}): Policy {
  return checkPolicyText(text, file, opts).policy;
}

/** loadPolicyText, with the warnings about risky but valid rules. */
export function checkPolicyText(text: string, file: string, opts: PolicyLoadOptions = {}): { policy: Policy; warnings: string[] } {
  const checked = check(text, file, opts);
  if (checked.problems.length > 0 || !checked.policy) throw problemsError('POLICY_INVALID', file, checked.problems);
  return { policy: checked.policy, warnings: checked.warnings };
}

function check(text: string, file: string, opts: PolicyLoadOptions): Checked {
  let data: unknown;
  let locate: Locate;
  try {
    ({ data, locate } = parseYaml(text, file, 'POLICY_INVALID'));
  } catch (e) {
    if (isWogateError(e, 'POLICY_INVALID')) return { problems: [...((e.details?.errors as Problem[] | undefined) ?? [])], warnings: [] };
    throw e;
  }
  const schemaErrors = schemaProblems(SCHEMA, data, locate);
  const problems: Problem[] = [...schemaErrors];
  const warnings: string[] = [];
  const raw = data as RawPolicy;
  const rawRules: unknown = typeof raw === 'object' && raw !== null ? raw.rules : undefined;
  // Rules the schema accepted are checked further even when others are broken, so one run
  // reports everything wrong with the file.
  const wellFormed = (i: number) => !schemaErrors.some((p) => p.path === `/rules/${i}` || p.path.startsWith(`/rules/${i}/`));
  const ruleAt = new Map<string, number>();
  const rules: Rule[] = [];
  for (const [i, r] of (Array.isArray(rawRules) ? (rawRules as RawRule[]) : []).entries()) {
    if (!wellFormed(i)) continue;
    const base = `/rules/${i}`;
    const seen = ruleAt.get(r.id);
    if (seen !== undefined) problems.push(at(locate, `${base}/id`, `duplicate rule id "${r.id}" (first at /rules/${seen}/id)`));
    else ruleAt.set(r.id, i);

    const ms = (key: keyof typeof LIMITS, value: string | undefined): number => {
      const where = `${base}/require/${key}`;
      const n = value === undefined ? 0 : parseDuration(value, `${file}: ${where}`);
      if (n > LIMITS[key]) problems.push(at(locate, where, `must be at most ${LIMIT_TEXT[key]} (got ${value})`));
      if (key === 'maxDuration' && n <= 0) problems.push(at(locate, where, `must be more than 0 (got ${value}): a rule that grants no time grants nothing`));
      return n;
    };
    const require = {
      statuses: r.require.statuses,
      minApprovals: r.require.minApprovals ?? 1,
      ...(r.require.approverRoles ? { approverRoles: [...r.require.approverRoles] } : {}),
      reapproveOnWiden: r.require.reapproveOnWiden ?? true,
      leadTimeMs: ms('leadTime', r.require.leadTime),
      graceMs: ms('grace', r.require.grace),
      maxDurationMs: ms('maxDuration', r.require.maxDuration),
    };

    const grant: Entitlement[] = r.grant.map((g, j) => {
      const where = `${base}/grant/${j}`;
      const type = g.type ?? 'network';
      const holds = opts.knownTargets?.get(g.target);
      if (opts.knownTargets && !holds) {
        const known = [...opts.knownTargets.keys()].sort();
        problems.push(at(locate, `${where}/target`, `unknown target "${g.target}" (${known.length ? `configured targets: ${known.join(', ')}` : 'no targets are configured'})`));
      } else if (holds && !holds.includes(type)) {
        problems.push(at(locate, `${where}/type`, `target "${g.target}" holds ${holds.join(', ')} access, not ${type}`));
      }
      for (const [field, only] of ENTITLEMENT_FIELDS) {
        if (g[field] !== undefined && only !== type) problems.push(at(locate, `${where}/${field}`, `${field} applies to type ${only} only (this entitlement is type ${type})`));
      }
      if (g.account !== undefined && type === 'network') problems.push(at(locate, `${where}/account`, 'account does not apply to type network (network access comes from the technician\'s address)'));
      return toEntitlement(type, g, () => problems.push(at(locate, where, 'a group entitlement needs groups: the groups the technician\'s account is put in')));
    });

    for (const [j, id] of (r.match.sources ?? []).entries()) {
      if (opts.knownSources && !opts.knownSources.includes(id)) {
        problems.push(at(locate, `${base}/match/sources/${j}`, `unknown source "${id}" (${opts.knownSources.length ? `configured sources: ${opts.knownSources.join(', ')}` : 'no sources are configured'})`));
      }
    }
    for (const status of r.require.statuses) {
      const risk = RISKY_STATUSES[status];
      if (risk) warnings.push(formatProblem(file, at(locate, `${base}/require/statuses`, `rule "${r.id}" allows status "${status}": ${risk}`)));
    }
    rules.push({ id: r.id, ...(r.description !== undefined ? { description: r.description } : {}), match: copyMatch(r.match, (key, k, message) => problems.push(at(locate, `${base}/match/${key}/${k}`, message))), require, grant });
  }
  if (problems.length > 0) return { problems: problems.sort(byPosition), warnings, locate };
  const policy: Policy = {
    name: raw.metadata.name,
    file,
    ...(raw.metadata.description !== undefined ? { description: raw.metadata.description } : {}),
    rules,
  };
  return { policy, problems: [], warnings, locate };
}

/**
 * Only the keys the file set: an absent list means "any", so it must stay absent. Vendor and asset
 * ids are compared in their canonical form (src/domain/ids.ts), as every order's are.
 */
function copyMatch(m: RuleMatch, problem: (key: 'vendors' | 'assets', index: number, message: string) => void): RuleMatch {
  const ids = (key: 'vendors' | 'assets', list: readonly string[]) => list.map((raw, k) => {
    const r = tryCanonicalId(raw, `match.${key}[${k}]`);
    if (r.ok) return r.id;
    problem(key, k, r.error.message);
    return raw;
  });
  const out: {
    vendors?: readonly string[];
    sites?: readonly string[];
    zones?: readonly string[];
    assetClasses?: readonly string[];
    criticality?: readonly Criticality[];
    assets?: readonly string[];
    orderTypes?: readonly OrderType[];
    sources?: readonly string[];
  } = {};
  if (m.vendors) out.vendors = ids('vendors', m.vendors);
  if (m.sites) out.sites = [...m.sites];
  if (m.zones) out.zones = [...m.zones];
  if (m.assetClasses) out.assetClasses = [...m.assetClasses];
  if (m.criticality) out.criticality = [...m.criticality];
  if (m.assets) out.assets = ids('assets', m.assets);
  if (m.orderTypes) out.orderTypes = [...m.orderTypes];
  if (m.sources) out.sources = [...m.sources];
  return out;
}

function at(locate: Locate | undefined, pointer: string, message: string): Problem {
  const pos = locate?.(pointer);
  return pos ? { path: pointer, message, ...pos } : { path: pointer, message };
}

function combined(dir: string, problems: readonly Problem[]): WogateError {
  const files = [...new Set(problems.map((p) => p.file as string))];
  const first = files[0] as string;
  if (files.length === 1) return problemsError('POLICY_INVALID', first, problems);
  const lines = problems.map((p) => formatProblem(p.file as string, p));
  return new WogateError('POLICY_INVALID', `${files.length} policy files in ${dir} are invalid (${lines.length} problems):\n  ${lines.join('\n  ')}`, { file: first, files, errors: problems });
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Fields that belong to one entitlement type; naming them on another is an error, not ignored. */
const ENTITLEMENT_FIELDS: readonly (readonly [keyof RawEntitlement, Entitlement['type']])[] = [
  ['ports', 'network'], ['groups', 'group'], ['safes', 'pam'], ['accessLevels', 'badge'],
];

function toEntitlement(type: Entitlement['type'], g: RawEntitlement, noGroups: () => void): Entitlement {
  const account = g.account !== undefined ? { account: g.account } : {};
  switch (type) {
    case 'network':
      return g.ports ? { type, target: g.target, ports: g.ports } : { type, target: g.target };
    case 'group':
      if (!g.groups) noGroups();
      return { type, target: g.target, groups: g.groups ?? [], ...account };
    case 'pam':
      return { type, target: g.target, ...(g.safes ? { safes: g.safes } : {}), ...account };
    case 'badge':
      return { type, target: g.target, ...(g.accessLevels ? { accessLevels: g.accessLevels } : {}), ...account };
    case 'certificate':
      return { type, target: g.target, ...account };
  }
}
