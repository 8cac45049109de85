import { checkHttpUrl } from '../http-safety.js';

/**
 * Why an address is not acceptable for Vault, or undefined. The token and every secret cross this
 * connection, so it is https; plain http only to a Vault Agent listening on loopback.
 */
export function vaultAddressProblemText(raw: string): string | undefined {
  let u: URL;
  try {
    u = checkHttpUrl(raw, `"${raw}"`);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const h = u.hostname;
  const loopback = h === 'localhost' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
  if (u.protocol === 'http:' && !loopback) return `must be https, got ${u.origin} (plain http only for a Vault Agent on loopback)`;
  return undefined;
}
