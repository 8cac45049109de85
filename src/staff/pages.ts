import { describeResource, type Evaluation, type Grant, type Vendor } from '../domain/index.js';
import type { AccessBlock } from '../engine/access-blocks.js';
import type { Suspension } from '../engine/suspensions.js';
import { esc, timeLeft } from '../portal/html.js';

/**
 * The staff pages' bodies. Every value from the store, the register or the request goes through
 * `esc`; forms carry the session's CSRF token; actions show only to roles that may take them.
 */

export interface Viewer {
  readonly csrf: string;
  /** May revoke and use the kill switch (operator or higher). */
  readonly canAct: boolean;
}

const enc = (v: string) => esc(encodeURIComponent(v));
const csrfField = (v: Viewer) => `<input type="hidden" name="csrf" value="${esc(v.csrf)}">`;
const iso = (d: Date) => esc(d.toISOString());

/** Time left (or until the start) as server-rendered text that the page's script keeps counting down. */
export function countdown(g: Pick<Grant, 'validFrom' | 'validUntil'>, now: Date): string {
  if (g.validFrom.getTime() > now.getTime()) return `starts in ${esc(timeLeft(g.validFrom, now))}`;
  return `<span class="countdown" data-until="${iso(g.validUntil)}">${esc(timeLeft(g.validUntil, now))}</span>`;
}

export interface GrantFilterForm {
  readonly vendor?: string;
  readonly asset?: string;
}

export function grantsBody(grants: readonly Grant[], now: Date, filter: GrantFilterForm, suspended: ReadonlySet<string>): string {
  const rows = grants.map((g) => `<tr data-grant="${esc(g.id)}" class="${g.validUntil.getTime() <= now.getTime() ? 'ended' : ''}">
<td>${esc(g.vendorId)}${suspended.has(g.vendorId) ? ' <span class="suspended">suspended</span>' : ''}</td>
<td>${esc(g.technicianId)}</td>
<td>${esc(g.assetId)}</td>
<td>${esc(describeResource(g.resource))}<br><small>${esc(g.targetId)}</small></td>
<td><a href="/staff/explain?order=${enc(g.orderKey)}">${esc(g.orderKey)}</a></td>
<td>${iso(g.validFrom)}<br>${iso(g.validUntil)}</td>
<td>${countdown(g, now)}</td>
<td>${esc(g.state)}${g.lastError ? `<br><small title="${esc(g.lastError)}">${esc(g.attempts)} failed attempt(s)</small>` : ''}</td>
<td><a href="/staff/grants/${enc(g.id)}">details</a></td>
</tr>`);
  const form = `<form method="get" action="/staff">
<label for="vendor">Vendor</label><input type="text" id="vendor" name="vendor" value="${esc(filter.vendor ?? '')}" maxlength="200">
<label for="asset">Asset</label><input type="text" id="asset" name="asset" value="${esc(filter.asset ?? '')}" maxlength="200">
<p><button type="submit">Filter</button> <a href="/staff">all</a></p>
</form>`;
  const table = rows.length
    ? `<table><thead><tr><th>Vendor</th><th>Technician</th><th>Asset</th><th>Access</th><th>Work order</th><th>Window (UTC)</th><th>Time left</th><th>State</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`
    : '<p>No live grants' + (filter.vendor || filter.asset ? ' match this filter' : '') + '.</p>';
  return `<p>${grants.length} live grant(s) at ${iso(now)}. Revoke one from its details page; take everything a vendor holds from <a href="/staff/vendors">Vendors</a>.</p>${form}${table}`;
}

export interface GrantPageState {
  /** Live grants of other orders that share this grant's target entry. */
  readonly holders: readonly Grant[];
  /** The access block covering this grant's access, if any. */
  readonly block?: AccessBlock;
  readonly flash?: string;
}

export function grantBody(g: Grant, now: Date, v: Viewer, p: GrantPageState = { holders: [] }): string {
  const rows: [string, string][] = [
    ['Grant', esc(g.id)], ['State', esc(g.state)], ['Vendor', esc(g.vendorId)], ['Technician', esc(g.technicianId)], ['Asset', esc(g.assetId)],
    ['Access', `${esc(describeResource(g.resource))} on ${esc(g.targetId)}`],
    ['Work order', `<a href="/staff/explain?order=${enc(g.orderKey)}">${esc(g.orderKey)}</a>`],
    ['Rule', `${esc(g.rule)}${g.capped ? ' (window shortened by the policy\'s maximum duration)' : ''}`],
    ['Window (UTC)', `${iso(g.validFrom)} to ${iso(g.validUntil)}`],
    ['Time left', g.state === 'revoked' ? 'revoked' : countdown(g, now)],
  ];
  if (g.lastError) rows.push(['Last error', `${esc(g.lastError)} (${esc(g.attempts)} attempt(s)${g.nextAttemptAt ? `, next at ${iso(g.nextAttemptAt)}` : ''})`]);
  if (g.revokeReason) rows.push(['Revoked because', esc(g.revokeReason)]);
  if (p.block) rows.push(['Access blocked', `for all orders by ${esc(p.block.by)} at ${esc(p.block.at)}: ${esc(p.block.reason)} (block <code>${esc(p.block.id)}</code>; lifting it needs the policy-admin role)`]);
  const dl = `<dl>${rows.map(([k, val]) => `<dt>${esc(k)}</dt><dd>${val}</dd>`).join('')}</dl>`;
  const note = p.flash ? `<p class="flash" role="status">${esc(p.flash)}</p>` : '';
  // Revoking one grant leaves the entry to another order's grant (docs/decisions/0005): say so in words.
  const remains = p.holders.length
    ? `<p class="warn" role="status" data-still-held>${g.state === 'revoked' || g.state === 'revoking' ? 'This grant is revoked, but the access remains' : 'This access is also given'} through ${p.holders.map((h) => `order <a href="/staff/explain?order=${enc(h.orderKey)}">${esc(h.orderKey)}</a> (<a href="/staff/grants/${enc(h.id)}">grant ${esc(h.id)}</a>, until ${iso(h.validUntil)})`).join(', ')}.</p>`
    : '';
  let action = '';
  if (g.state !== 'revoked' && g.state !== 'revoking') {
    action = v.canAct
      ? `<h2>Revoke now</h2>
<form method="post" action="/staff/grants/${enc(g.id)}/revoke">${csrfField(v)}
<label for="reason">Why (kept in the audit trail)</label>
<textarea id="reason" name="reason" required minlength="3" maxlength="500" rows="3"></textarea>
<p>This grant ends at the target now and stays off: this work order can't bring it back.${p.holders.length ? ' Another order gives the same access, so the access itself stays: use the form below to take it away.' : ''}</p>
<p><button class="danger" type="submit">Revoke this grant</button></p>
</form>`
      : '<p>Revoking needs the operator role.</p>';
  }
  if (!p.block && v.canAct) {
    action += `<h2>Revoke this access for all orders</h2>
<form method="post" action="/staff/grants/${enc(g.id)}/block-access">${csrfField(v)}
<label for="block-reason">Why (kept in the audit trail)</label>
<textarea id="block-reason" name="reason" required minlength="3" maxlength="500" rows="3"></textarea>
<p>${esc(g.technicianId)} loses ${esc(describeResource(g.resource))} on ${esc(g.targetId)} through every work order, now and in future, until the block is lifted.</p>
<p><button class="danger" type="submit">Revoke this access for all orders</button></p>
</form>`;
  }
  return `${note}${remains}${dl}${action}<p><a href="/staff">Back to the grants</a></p>`;
}

export interface VendorRow {
  readonly vendor: Vendor;
  readonly live: number;
  readonly suspension?: Suspension;
}

export function vendorsBody(rows: readonly VendorRow[], v: Viewer, flash?: string): string {
  const note = flash ? `<p class="flash" role="status">${esc(flash)}</p>` : '';
  const body = rows.map(({ vendor, live, suspension }) => {
    const id = vendor.id;
    let action = '';
    if (v.canAct && suspension) {
      action = `<form method="post" action="/staff/vendors/${enc(id)}/reinstate">${csrfField(v)}
<label for="reinstate-${esc(id)}">Reason to reinstate</label><input type="text" id="reinstate-${esc(id)}" name="reason" required minlength="3" maxlength="500">
<button type="submit">Reinstate ${esc(id)}</button></form>`;
    } else if (v.canAct) {
      action = `<form method="post" action="/staff/vendors/${enc(id)}/suspend">${csrfField(v)}
<label for="reason-${esc(id)}">Why</label><input type="text" id="reason-${esc(id)}" name="reason" required minlength="3" maxlength="500">
<label for="confirm-${esc(id)}">Type <code>${esc(id)}</code> to confirm</label><input type="text" id="confirm-${esc(id)}" name="confirm" required maxlength="200" autocomplete="off">
<button class="danger" type="submit">Suspend ${esc(id)}: revoke everything</button></form>`;
    }
    const state = suspension
      ? `<span class="suspended">suspended</span> by ${esc(suspension.by)} at ${esc(suspension.at)}: ${esc(suspension.reason)}`
      : 'active';
    return `<tr data-vendor="${esc(id)}"><td>${esc(id)}${vendor.name ? `<br><small>${esc(vendor.name)}</small>` : ''}</td><td>${esc(vendor.technicians.length)}</td><td><a href="/staff?vendor=${enc(id)}">${esc(live)}</a></td><td>${state}</td><td>${action}</td></tr>`;
  });
  const intro = '<p class="warn">The kill switch revokes every grant the vendor holds, on every target, now; their work orders give nothing until the vendor is reinstated. Use it when a vendor\'s credentials or network may be compromised.</p>';
  return `${note}${intro}<table><thead><tr><th>Vendor</th><th>Technicians</th><th>Live grants</th><th>State</th><th>${v.canAct ? 'Kill switch' : ''}</th></tr></thead><tbody>${body.join('')}</tbody></table>`;
}

export function explainBody(orderRef: string, at: string, ev: Evaluation | undefined, atDate: Date | undefined): string {
  const form = `<form method="get" action="/staff/explain">
<label for="order">Work order (source/id)</label><input type="text" id="order" name="order" value="${esc(orderRef)}" maxlength="300" required>
<label for="at">At (ISO-8601, empty for now)</label><input type="text" id="at" name="at" value="${esc(at)}" maxlength="40">
<p><button type="submit">Explain</button></p>
</form>`;
  if (!ev || !atDate) return form;
  const grants = ev.grants.length
    ? `<table><thead><tr><th>Technician</th><th>Asset</th><th>Access</th><th>Window (UTC)</th><th>Rule</th></tr></thead><tbody>${ev.grants.map((g) => `<tr><td>${esc(g.technicianId)}</td><td>${esc(g.assetId)}</td><td>${esc(describeResource(g.resource))}<br><small>${esc(g.targetId)}</small></td><td>${iso(g.validFrom)}<br>${iso(g.validUntil)}${g.capped ? '<br><small>shortened by the policy\'s maximum duration</small>' : ''}</td><td>${esc(g.rule)}</td></tr>`).join('')}</tbody></table>`
    : '<p>Nothing is granted.</p>';
  const denials = ev.denials.length
    ? `<table><thead><tr><th>Code</th><th>Technician</th><th>Asset</th><th>Why</th></tr></thead><tbody>${ev.denials.map((d) => `<tr><td><code>${esc(d.code)}</code></td><td>${esc(d.technicianId ?? '')}</td><td>${esc(d.assetId ?? '')}</td><td>${esc(d.reason)}${d.ruleFailures?.length ? `<ul>${d.ruleFailures.map((f) => `<li>${esc(f.rule)}: <code>${esc(f.code)}</code> ${esc(f.reason)}</li>`).join('')}</ul>` : ''}</td></tr>`).join('')}</tbody></table>`
    : '<p>Nothing is denied.</p>';
  const next = ev.nextChangeAt ? `<p>The decision changes by time alone at ${iso(ev.nextChangeAt)}.</p>` : '';
  return `${form}<h2>Decision at ${iso(atDate)}</h2><h3>Granted</h3>${grants}<h3>Denied</h3>${denials}${next}`;
}
