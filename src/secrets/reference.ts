// Secret references as the config writes them. Kept apart from the Vault client so the config
// loader can recognise a `vault:` reference without loading node-vault.

/**
 * `vault:<path>#<key>`: the key `key` of the KV version 2 secret at `path` inside the configured
 * mount. Path segments and the key are letters, digits, `_ . -`; `.` and `..` segments are refused.
 * config.schema.json's `secretRef` pattern says the same.
 */
export const VAULT_REF = /^vault:(?!\.\.?[/#])(?!.*\/\.\.?[/#])([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*)#([A-Za-z0-9_.-]+)$/;

/** Any reference resolveSecret understands: env:NAME, file:PATH, vault:PATH#KEY. */
export const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|vault:.+)$/;

export interface VaultRef {
  readonly path: string;
  readonly key: string;
}

/** The path and key of a well-formed `vault:` reference, or undefined. */
export function parseVaultRef(ref: string): VaultRef | undefined {
  const m = VAULT_REF.exec(ref);
  return m ? { path: m[1] as string, key: m[2] as string } : undefined;
}
