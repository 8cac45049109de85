// Small pieces every target adapter needs for its messages and config blocks.

/** A value quoted for an error message and cut short: a message names what was wrong without echoing a whole payload. */
export function show(value: unknown, max = 80): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** A dotted-quad IPv4 address, as a JSON Schema pattern. */
export const IPV4_PATTERN = '^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$';

/** The asset flow of a firewall scope (FortiGate address group, PAN-OS tag): destination address, port and protocol. */
export const FLOW_PROPERTIES = {
  address: { type: 'string', pattern: IPV4_PATTERN, description: 'the asset\'s IPv4 address, as in the asset register' },
  port: { type: 'integer', minimum: 1, maximum: 65535, description: 'the asset port the firewall rule allows' },
  protocol: { enum: ['tcp', 'udp'], description: 'the transport protocol of that port' },
} as const;
