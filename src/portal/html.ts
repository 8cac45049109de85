/**
 * Server-rendered pages of the vendor portal. Every value goes through `esc`; the pages carry no
 * script at all, so the portal's Content-Security-Policy allows none.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

/** Only the portal's own stylesheet and forms posting back to it; no script, no frames, no base. */
export const PORTAL_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const PORTAL_CSS = `
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f7f9; }
header { background: #12324a; color: #fff; padding: .75rem 1.5rem; display: flex; justify-content: space-between; align-items: center; }
header form { margin: 0; }
header nav a { color: #fff; margin: 0 .75rem; }
main { max-width: 60rem; margin: 1.5rem auto; padding: 0 1.5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid #d8dde3; }
.error { border-left: 4px solid #b3261e; background: #fff; padding: 1rem; }
.secret { font-family: ui-monospace, monospace; font-size: 1.4rem; background: #fff8d6; padding: .5rem 1rem; display: inline-block; }
button, .button { background: #12324a; color: #fff; border: 0; padding: .4rem .9rem; cursor: pointer; text-decoration: none; }
`;

/** The frame around a set of pages: the vendor portal's, or the staff pages'. */
export interface Shell {
  /** Shown in the header and the title. */
  readonly product: string;
  /** Where the pages live: /portal or /staff (stylesheet, sign-out form). */
  readonly base: string;
  /** Links in the header, shown when signed in. */
  readonly nav?: readonly (readonly [href: string, label: string])[];
  /** A same-origin script (the staff pages' countdowns); the portal has none. */
  readonly script?: string;
}

export interface PageOptions {
  /** Signed in as: shows the technician and a sign-out form carrying the CSRF token. */
  readonly user?: { readonly technicianId: string; readonly csrf: string };
}

export interface ShellUser {
  readonly label: string;
  readonly csrf: string;
}

const PORTAL_SHELL: Shell = { product: 'wogate vendor portal', base: '/portal' };

/** A whole page: every value in `title` and `user` is escaped here; `body` is HTML the caller escaped. */
export function shellPage(shell: Shell, title: string, body: string, user?: ShellUser, bodyAttrs = ''): string {
  const signOut = user
    ? `<form method="post" action="${shell.base}/logout"><span>${esc(user.label)}</span> <input type="hidden" name="csrf" value="${esc(user.csrf)}"><button type="submit">Sign out</button></form>`
    : '';
  const nav = user && shell.nav ? `<nav>${shell.nav.map(([href, label]) => `<a href="${esc(href)}">${esc(label)}</a>`).join(' ')}</nav>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · ${esc(shell.product)}</title>
<link rel="stylesheet" href="${shell.base}/static/${shell.base.slice(1)}.css">
${shell.script ? `<script src="${esc(shell.script)}" defer></script>\n` : ''}</head>
<body${bodyAttrs}>
<header><strong>${esc(shell.product)}</strong>${nav}${signOut}</header>
<main>
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

export function page(title: string, body: string, o: PageOptions = {}): string {
  return shellPage(PORTAL_SHELL, title, body, o.user ? { label: o.user.technicianId, csrf: o.user.csrf } : undefined);
}

export function errorPage(title: string, message: string, o: PageOptions = {}): string {
  return page(title, errorBody(message, '/portal', 'Back to the portal'), o);
}

export function errorBody(message: string, back: string, backLabel: string): string {
  return `<div class="error"><p>${esc(message)}</p></div><p><a href="${esc(back)}">${esc(backLabel)}</a></p>`;
}

/** "2 h 05 min", "4 min", "ended". */
export function timeLeft(until: Date, now: Date): string {
  const ms = until.getTime() - now.getTime();
  if (ms <= 0) return 'ended';
  const min = Math.floor(ms / 60_000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const d = Math.floor(h / 24);
  if (d > 0) return `${d} d ${h % 24} h`;
  return `${h} h ${String(min % 60).padStart(2, '0')} min`;
}
