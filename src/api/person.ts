import { tryCanonicalId } from '../domain/ids.js';
import type { ApiToken } from '../store/store.js';
import type { Role } from './roles.js';

/**
 * One notion of "person" for every rule that counts people (the break-glass two-person rule, the
 * kill switch's reinstate): an OIDC caller is the value of auth.oidc.personClaim (default `sub`),
 * a wgt_ API token is its owner (`wogate token create --owner`), both in the canonical form of
 * src/domain/ids.ts. So Alice's sign-in and Alice's own token are one person, however many tokens
 * she holds, and a token without an owner is nobody: it can't take part in those rules.
 */

/** Who is calling the admin API: a scoped integration token, or a person (or service) signed in at the OIDC provider. */
export type Principal =
  | { readonly kind: 'token'; readonly token: ApiToken }
  | { readonly kind: 'oidc'; readonly sub: string; readonly role: Role | undefined; readonly person?: string | undefined };

/** The default person claim: the provider's subject. */
export const DEFAULT_PERSON_CLAIM = 'sub';

/** The person a verified token's person claim (read with claimAt) names, canonical; undefined when missing or not an id. */
export function personFromClaim(value: unknown, claim: string = DEFAULT_PERSON_CLAIM): string | undefined {
  const c = tryCanonicalId(value, claim);
  return c.ok ? c.id : undefined;
}

/** The person behind a caller, if one is known. Token owners are stored canonical already. */
export function personOf(p: Principal | undefined): string | undefined {
  if (p?.kind === 'token') return p.token.owner;
  if (p?.kind === 'oidc') return p.person;
  return undefined;
}
