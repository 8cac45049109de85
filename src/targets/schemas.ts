// Each target adapter's own schema for its config block, by kind: merged into
// config/schemas/config.schema.json by scripts/merge-target-schemas.ts, checked equal by a test.
import { BEYONDTRUST_TARGET_SCHEMA } from './beyondtrust-config.js';
import { CERTIFICATE_TARGET_SCHEMA } from './certificate-config.js';
import { CYBERARK_TARGET_SCHEMA } from './cyberark-config.js';
import { FORTIGATE_TARGET_SCHEMA } from './fortigate-config.js';
import { LDAP_TARGET_SCHEMA } from './ldap-config.js';
import { LENEL_TARGET_SCHEMA } from './lenel-config.js';
import { PANOS_TARGET_SCHEMA } from './panos-config.js';

export const TARGET_BLOCK_SCHEMAS = {
  ldap: LDAP_TARGET_SCHEMA,
  fortigate: FORTIGATE_TARGET_SCHEMA,
  panos: PANOS_TARGET_SCHEMA,
  cyberark: CYBERARK_TARGET_SCHEMA,
  beyondtrust: BEYONDTRUST_TARGET_SCHEMA,
  lenel: LENEL_TARGET_SCHEMA,
  certificate: CERTIFICATE_TARGET_SCHEMA,
} as const;
