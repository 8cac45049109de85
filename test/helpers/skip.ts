/**
 * Skips the suite with a banner nobody can miss; under CI (whose .ci/run installs every
 * prerequisite) a missing one is a failure instead, so a suite can't silently stop running.
 * `needs` says what the tests need and how to get it.
 */
export function skipOrFail(ctx: Mocha.Context, suite: string, why: string, needs: string): never {
  const bar = '!'.repeat(78);
  const ci = Boolean(process.env.CI);
  console.warn(['', bar, `!! ${ci ? 'FAILING' : 'SKIPPING'}: ${suite}`, `!! because: ${why}`, `!! ${needs}`, bar, ''].join('\n'));
  if (ci) throw new Error(`${suite} cannot run under CI: ${why}`);
  return ctx.skip();
}
