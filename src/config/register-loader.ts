import fs from 'node:fs';
import { makeRegister, WogateError, type Asset, type Criticality, type Endpoint, type Register, type Technician, type Vendor } from '../domain/index.js';
import { tryCanonicalId } from '../domain/ids.js';
import { byPosition, parseYaml, problemsError, schemaProblems, type Locate, type Problem } from './schema.js';

const ASSETS = 'register.schema.json#/$defs/assetsFile';
const VENDORS = 'register.schema.json#/$defs/vendorsFile';

interface RawAsset {
  id: string;
  name?: string;
  class: string;
  criticality: Criticality;
  site: string;
  zone: string;
  endpoints?: { address: string; ports: number[]; protocol?: 'tcp' | 'udp' }[];
  badgeAreas?: string[];
  pamTargets?: string[];
  firmware?: string;
}
interface RawVendor {
  id: string;
  name?: string;
  technicians: { id: string; name?: string; address?: string; accounts?: Record<string, string> }[];
}

/** The asset register and the vendor register, each from its own YAML file. Throws REGISTER_INVALID naming file and path. */
export function loadRegister(assetsFile: string, vendorsFile: string): Register {
  return makeRegister(parseAssets(read(assetsFile), assetsFile), parseVendors(read(vendorsFile), vendorsFile));
}

/** The `assets:` file's text; `file` is used in messages. */
export function parseAssets(text: string, file: string): Asset[] {
  const { data, locate } = parseYaml(text, file, 'REGISTER_INVALID');
  fail(file, schemaProblems(ASSETS, data, locate));
  const raw = (data as { assets: RawAsset[] }).assets;
  const problems: Problem[] = [];
  const first = new Map<string, number>();
  const ids = raw.map((a, i) => idAt(locate, `/assets/${i}/id`, a.id, problems));
  for (const [i, a] of raw.entries()) {
    const id = ids[i];
    if (id === undefined) continue;
    const seen = first.get(id);
    if (seen !== undefined) problems.push(at(locate, `/assets/${i}/id`, `duplicate asset id "${a.id}" (first at /assets/${seen}/id${sameSpelling(raw[seen]?.id, a.id)})`));
    else first.set(id, i);
  }
  fail(file, problems);
  return raw.map((a, i) => toAsset({ ...a, id: ids[i] as string }));
}

/** The `vendors:` file's text; `file` is used in messages. */
export function parseVendors(text: string, file: string): Vendor[] {
  const { data, locate } = parseYaml(text, file, 'REGISTER_INVALID');
  fail(file, schemaProblems(VENDORS, data, locate));
  const raw = (data as { vendors: RawVendor[] }).vendors;
  const problems: Problem[] = [];
  const vendorAt = new Map<string, number>();
  // One address, one technician: the firewall cannot tell two people on one address apart.
  const addressAt = new Map<string, string>();
  const accountAt = new Map<string, string>();
  const vendors = raw.map((v, i) => ({
    ...v,
    id: idAt(locate, `/vendors/${i}/id`, v.id, problems) ?? v.id,
    technicians: v.technicians.map((t, j) => ({ ...t, id: idAt(locate, `/vendors/${i}/technicians/${j}/id`, t.id, problems) ?? t.id })),
  }));
  for (const [i, v] of vendors.entries()) {
    const seen = vendorAt.get(v.id);
    if (seen !== undefined) problems.push(at(locate, `/vendors/${i}/id`, `duplicate vendor id "${raw[i]?.id}" (first at /vendors/${seen}/id${sameSpelling(raw[seen]?.id, raw[i]?.id)})`));
    else vendorAt.set(v.id, i);
    const techAt = new Map<string, number>();
    for (const [j, t] of v.technicians.entries()) {
      const base = `/vendors/${i}/technicians/${j}`;
      const seenTech = techAt.get(t.id);
      if (seenTech !== undefined) {
        const spelled = raw[i]?.technicians[j]?.id;
        problems.push(at(locate, `${base}/id`, `duplicate technician id "${spelled}" in vendor "${raw[i]?.id}" (first at /vendors/${i}/technicians/${seenTech}/id${sameSpelling(raw[i]?.technicians[seenTech]?.id, spelled)})`));
      } else techAt.set(t.id, j);
      for (const [name, account] of Object.entries(t.accounts ?? {})) {
        // Two people on one account would each be given, and lose, the other's access.
        const key = `${name}\0${account}`;
        const holder = accountAt.get(key);
        if (holder !== undefined) {
          problems.push(at(locate, `${base}/accounts/${name}`, `${name} account "${account}" is already bound to another technician (${holder}); each technician needs an account of their own`));
        } else accountAt.set(key, `${base}, "${v.id}/${t.id}"`);
      }
      if (t.address === undefined) continue;
      const owner = addressAt.get(t.address);
      if (owner !== undefined) {
        problems.push(at(locate, `${base}/address`, `address ${t.address} is already bound to another technician (${owner}); each technician needs an address of their own`));
      } else addressAt.set(t.address, `${base}, "${v.id}/${t.id}"`);
    }
  }
  fail(file, problems);
  return vendors.map(toVendor);
}

/** The canonical form of a register id (src/domain/ids.ts), or undefined with the problem recorded at `pointer`. */
function idAt(locate: Locate, pointer: string, raw: string, problems: Problem[]): string | undefined {
  const r = tryCanonicalId(raw, pointer);
  if (r.ok) return r.id;
  problems.push(at(locate, pointer, r.error.message.startsWith(pointer) ? r.error.message.slice(pointer.length).trimStart() : r.error.message));
  return undefined;
}

/** Two spellings of one id are one id: say so, or the duplicate looks like a false alarm. */
function sameSpelling(first: string | undefined, again: string | undefined): string {
  return first !== undefined && again !== undefined && first !== again ? `, spelled "${first}": ids are compared case-insensitively in Unicode NFKC form` : '';
}

function toAsset(a: RawAsset): Asset {
  const endpoints: Endpoint[] = (a.endpoints ?? []).map((e) => ({ address: e.address, ports: [...e.ports], protocol: e.protocol ?? 'tcp' }));
  return {
    id: a.id,
    ...(a.name !== undefined ? { name: a.name } : {}),
    class: a.class,
    criticality: a.criticality,
    site: a.site,
    zone: a.zone,
    endpoints,
    ...(a.badgeAreas ? { badgeAreas: [...a.badgeAreas] } : {}),
    ...(a.pamTargets ? { pamTargets: [...a.pamTargets] } : {}),
    ...(a.firmware !== undefined ? { firmware: a.firmware } : {}),
  };
}

function toVendor(v: RawVendor): Vendor {
  const technicians: Technician[] = v.technicians.map((t) => ({
    id: t.id,
    ...(t.name !== undefined ? { name: t.name } : {}),
    ...(t.address !== undefined ? { address: t.address } : {}),
    ...(t.accounts !== undefined ? { accounts: { ...t.accounts } } : {}),
  }));
  return { id: v.id, ...(v.name !== undefined ? { name: v.name } : {}), technicians };
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new WogateError('REGISTER_INVALID', `${file}: cannot read register file: ${why}`, { file, errors: [{ path: '', message: `cannot read: ${why}` }] });
  }
}

function fail(file: string, problems: Problem[]): void {
  if (problems.length > 0) throw problemsError('REGISTER_INVALID', file, problems.sort(byPosition));
}

function at(locate: Locate, pointer: string, message: string): Problem {
  const pos = locate(pointer);
  return pos ? { path: pointer, message, ...pos } : { path: pointer, message };
}
