import fs from 'node:fs';
import { indexApprovers, WogateError, type Approver, type ApproverIndex } from '../domain/index.js';
import { tryCanonicalId } from '../domain/ids.js';
import { byPosition, parseYaml, problemsError, schemaProblems, type Locate, type Problem } from './schema.js';

const APPROVERS = 'register.schema.json#/$defs/approversFile';

interface RawApprover {
  id: string;
  name?: string;
  roles: string[];
  aliases?: string[];
}

/** The approvers register (config `register.approvers`). Throws REGISTER_INVALID naming file and path. */
export function loadApprovers(file: string): ApproverIndex {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new WogateError('REGISTER_INVALID', `${file}: cannot read the approvers register: ${why}`, { file, errors: [{ path: '', message: `cannot read: ${why}` }] });
  }
  return indexApprovers(parseApprovers(text, file));
}

/**
 * The approvers file's text; `file` is used in messages. Ids and aliases are kept in canonical form,
 * and each may belong to one person only: an id shared by two people would let one approval count
 * as either, and one person could fill two roles.
 */
export function parseApprovers(text: string, file: string): Approver[] {
  const { data, locate } = parseYaml(text, file, 'REGISTER_INVALID');
  fail(file, schemaProblems(APPROVERS, data, locate));
  const raw = (data as { approvers: RawApprover[] }).approvers;
  const problems: Problem[] = [];
  const owner = new Map<string, string>();
  const out: Approver[] = [];
  for (const [i, a] of raw.entries()) {
    const ids: string[] = [];
    for (const [where, value] of [[`/approvers/${i}/id`, a.id] as const, ...(a.aliases ?? []).map((v, j) => [`/approvers/${i}/aliases/${j}`, v] as const)]) {
      const c = tryCanonicalId(value, where);
      if (!c.ok) {
        problems.push(at(locate, where, c.error.message));
        continue;
      }
      const first = owner.get(c.id);
      if (first !== undefined) problems.push(at(locate, where, `"${value}" is already the id or an alias of ${first}; each id belongs to one person`));
      else owner.set(c.id, `/approvers/${i} ("${a.id}")`);
      ids.push(c.id);
    }
    const [id, ...aliases] = ids;
    if (id !== undefined && ids.length === 1 + (a.aliases?.length ?? 0)) {
      out.push({ id, ...(a.name !== undefined ? { name: a.name } : {}), roles: [...a.roles], aliases });
    }
  }
  fail(file, problems);
  return out;
}

function fail(file: string, problems: Problem[]): void {
  if (problems.length > 0) throw problemsError('REGISTER_INVALID', file, problems.sort(byPosition));
}

function at(locate: Locate, pointer: string, message: string): Problem {
  const pos = locate(pointer);
  return pos ? { path: pointer, message, ...pos } : { path: pointer, message };
}
