import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import { skipOrFail as skipOrFailNeeding } from './skip.js';

const run = promisify(execFile);

/** Namespaces this process created and has not deleted yet; removed on exit even if a hook never ran. */
const live = new Set<string>();
let counter = 0;
let exitHook = false;

function uniqueName(): string {
  return `wg-${process.pid}-${++counter}`;
}

function track(name: string): void {
  live.add(name);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const n of live) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  });
}

async function cmd(file: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(file, [...args], { timeout: 10_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

/** A network namespace with `lo` up; processes started in it are killed when it is destroyed. */
export class Netns {
  private readonly children = new Set<ChildProcessWithoutNullStreams>();

  private constructor(
    readonly name: string,
    /** What the test calls it (vendor, fw, ...), for messages only. */
    readonly label: string,
  ) {}

  static async create(label: string): Promise<Netns> {
    const name = uniqueName();
    await cmd('ip', ['netns', 'add', name]);
    track(name);
    const ns = new Netns(name, label);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n <ns> ...` */
  ip(...args: string[]): Promise<string> {
    return cmd('ip', ['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(file: string, ...args: string[]): Promise<string> {
    return cmd('ip', ['netns', 'exec', this.name, file, ...args]);
  }

  /** Starts a long-running command inside the namespace; destroy() kills it. */
  spawn(file: string, ...args: string[]): ChildProcessWithoutNullStreams {
    const child = spawn('ip', ['netns', 'exec', this.name, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs `node -e <script> ...args` inside the namespace (the same node that runs the tests). */
  node(script: string, ...args: string[]): ChildProcessWithoutNullStreams {
    return this.spawn(process.execPath, '-e', script, ...args);
  }

  async destroy(): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    if (!live.has(this.name)) return;
    await cmd('ip', ['netns', 'del', this.name]);
    live.delete(this.name);
  }
}

/** Links two namespaces with a veth pair and gives each end an address (CIDR). */
export async function veth(a: Netns, aIf: string, aCidr: string, b: Netns, bIf: string, bCidr: string): Promise<void> {
  await a.ip('link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
  await a.ip('addr', 'add', aCidr, 'dev', aIf);
  await b.ip('addr', 'add', bCidr, 'dev', bIf);
  await a.ip('link', 'set', aIf, 'up');
  await b.ip('link', 'set', bIf, 'up');
}

export type Availability = { ok: true } | { ok: false; why: string };

let availability: Promise<Availability> | undefined;

/** Whether this machine can run namespace tests: root, ip, nft, and nft working inside a fresh namespace. */
export function netnsAvailable(): Promise<Availability> {
  availability ??= probe();
  return availability;
}

async function probe(): Promise<Availability> {
  if (process.platform !== 'linux') return { ok: false, why: `platform is ${process.platform}, network namespaces need Linux` };
  const uid = process.getuid?.();
  if (uid !== 0) return { ok: false, why: `running as uid ${String(uid)}, network namespaces and nftables need root` };
  for (const [file, arg, pkg] of [
    ['ip', '-V', 'iproute2'],
    ['nft', '--version', 'nftables'],
  ] as const) {
    try {
      await cmd(file, [arg]);
    } catch (e) {
      return { ok: false, why: `\`${file} ${arg}\` failed (install ${pkg}): ${(e as Error).message}` };
    }
  }
  let ns: Netns | undefined;
  try {
    ns = await Netns.create('probe');
    await ns.exec('nft', 'list', 'ruleset');
    return { ok: true };
  } catch (e) {
    return { ok: false, why: `cannot create a network namespace and run nft in it: ${(e as Error).message}` };
  } finally {
    await ns?.destroy().catch(() => {});
  }
}

/**
 * Skips the suite with a banner nobody can miss; under CI (where root and nftables are always
 * there) a missing prerequisite is a failure instead, so the suite can't silently stop running.
 */
export function skipOrFail(ctx: Mocha.Context, suite: string, why: string): never {
  return skipOrFailNeeding(ctx, suite, why, 'These tests need Linux, root, iproute2 and nftables. Run them as root (CI always does).');
}
