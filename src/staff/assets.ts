import { PORTAL_CSS } from '../portal/html.js';

/**
 * The staff pages' stylesheet and their one script, both served from /staff/static: the
 * Content-Security-Policy allows script from this origin only, never inline.
 */
export const STAFF_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const STAFF_CSS = `${PORTAL_CSS}
main { max-width: 90rem; }
.flash { border-left: 4px solid #1e6b3a; background: #fff; padding: .75rem 1rem; }
.warn { border-left: 4px solid #b3261e; background: #fff; padding: .75rem 1rem; }
.ended td { color: #8a8f96; }
.countdown { font-variant-numeric: tabular-nums; white-space: nowrap; }
.suspended { color: #b3261e; font-weight: bold; }
form.inline { display: inline; }
dl { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; background: #fff; padding: 1rem; }
dt { font-weight: bold; }
label { display: block; margin: .5rem 0 .25rem; }
textarea, input[type=text] { width: 100%; max-width: 40rem; font: inherit; }
button.danger { background: #b3261e; }
`;

/**
 * Countdowns: every element with data-until counts down to it each second, in the server's time
 * (the page says what time the server had, so a skewed desk clock doesn't change the figures).
 * A page with data-refresh on its body reloads itself that often, to show grants that came or went.
 */
export const STAFF_JS = `'use strict';
(function () {
  var body = document.body;
  var skew = body.dataset.now ? Date.parse(body.dataset.now) - Date.now() : 0;
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function left(ms) {
    if (ms <= 0) return 'ended';
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d > 0 ? d + ' d ' : '') + h + ':' + two(m) + ':' + two(s % 60);
  }
  function tick() {
    var now = Date.now() + skew;
    var els = document.querySelectorAll('[data-until]');
    for (var i = 0; i < els.length; i++) {
      var ms = Date.parse(els[i].getAttribute('data-until')) - now;
      var text = left(ms);
      if (els[i].textContent !== text) els[i].textContent = text;
      var row = els[i].closest('tr');
      if (row && ms <= 0) row.classList.add('ended');
    }
  }
  tick();
  setInterval(tick, 1000);
  var every = Number(body.dataset.refresh);
  if (every > 0) setTimeout(function () { location.reload(); }, every * 1000);
})();
`;
