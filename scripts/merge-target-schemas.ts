// Copies each target adapter's own config-block schema into config/schemas/config.schema.json
// (definitions.<kind>TargetBlock), so the file users validate against and the adapters never drift
// apart; test/unit/config/target-schemas.test.ts fails when this needs running again.
// Run: npx tsx scripts/merge-target-schemas.ts
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGET_BLOCK_SCHEMAS } from '../src/targets/schemas.js';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'config', 'schemas', 'config.schema.json');
type Schema = { definitions: Record<string, { properties: Record<string, unknown>; allOf: unknown[] } & Record<string, unknown>> };
const schema = JSON.parse(fs.readFileSync(file, 'utf8')) as Schema;
const target = schema.definitions.target!;
const blocks = ['http', 'nftables', ...Object.keys(TARGET_BLOCK_SCHEMAS)];
target.properties.kind = { enum: blocks };
const allOf: unknown[] = [];
for (const kind of blocks) {
  const adapter = TARGET_BLOCK_SCHEMAS[kind as keyof typeof TARGET_BLOCK_SCHEMAS];
  if (adapter) {
    schema.definitions[`${kind}TargetBlock`] = JSON.parse(JSON.stringify(adapter)) as Schema['definitions'][string];
    target.properties[kind] = { $ref: `#/definitions/${kind}TargetBlock` };
  }
  const others = blocks.filter((b) => b !== kind).map((b) => ({ required: [b] }));
  allOf.push({ if: { properties: { kind: { const: kind } }, required: ['kind'] }, then: { required: [kind], not: { anyOf: others } } });
}
target.allOf = allOf;
fs.writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
console.log(`config.schema.json: target blocks for ${blocks.join(', ')}`);
