/** Versioned schema for the SQLite store. Append new versions; never edit a released one. */
export const SQLITE_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE hook_events (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  source       TEXT NOT NULL,
  webhook_id   TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  event_time   INTEGER NOT NULL,
  body         TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','processed','rejected')),
  error        TEXT,
  UNIQUE (source, webhook_id)
);
CREATE INDEX hook_events_pending ON hook_events (status, seq);

CREATE TABLE work_orders (
  source       TEXT NOT NULL,
  id           TEXT NOT NULL,
  revision     TEXT NOT NULL,
  status       TEXT NOT NULL,
  window_end   INTEGER NOT NULL,
  data         TEXT NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (source, id)
);
CREATE INDEX work_orders_window_end ON work_orders (window_end);

CREATE TABLE grants (
  id              TEXT PRIMARY KEY,
  key             TEXT NOT NULL,
  order_key       TEXT NOT NULL,
  vendor_id       TEXT NOT NULL,
  target_id       TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending','active','revoking','revoked')),
  valid_from      INTEGER NOT NULL,
  valid_until     INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  data            TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
-- At most one live grant per natural key; revoked ones stay as history.
CREATE UNIQUE INDEX grants_live_key ON grants (key) WHERE state <> 'revoked';
CREATE INDEX grants_state ON grants (state);
CREATE INDEX grants_order ON grants (order_key);
CREATE INDEX grants_vendor ON grants (vendor_id);

CREATE TABLE journal (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  grant_id    TEXT NOT NULL REFERENCES grants (id),
  op          TEXT NOT NULL CHECK (op IN ('provision','update','revoke')),
  target_id   TEXT NOT NULL,
  intent_at   INTEGER NOT NULL,
  outcome     TEXT CHECK (outcome IN ('ok','failed','interrupted')),
  outcome_at  INTEGER,
  error       TEXT
);
CREATE INDEX journal_dangling ON journal (id) WHERE outcome IS NULL;

CREATE TABLE blocks (
  key         TEXT PRIMARY KEY,
  reason      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE audit (
  seq        INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  subject    TEXT NOT NULL,
  details    TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
-- The head is written with every append, so cutting records off the end is detectable too.
CREATE TABLE audit_head (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  seq   INTEGER NOT NULL,
  hash  TEXT NOT NULL
);

CREATE TABLE api_tokens (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  hash        TEXT NOT NULL,
  scopes      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
);

CREATE TABLE state (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'hook-event-retries',
    sql: `
-- A delivery whose order could not be re-read from the CMMS waits and is tried again.
ALTER TABLE hook_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hook_events ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
DROP INDEX hook_events_pending;
CREATE INDEX hook_events_pending ON hook_events (status, next_attempt_at, seq);
`,
  },
  {
    version: 3,
    name: 'grant-resource-key',
    sql: `
-- Grants of different orders can share one entry on a target (same technician, same resource):
-- the engine looks them up by target and resource to keep the entry while any of them is live.
ALTER TABLE grants ADD COLUMN resource_key TEXT NOT NULL DEFAULT '';
-- Every grant before this version was a network flow.
UPDATE grants SET resource_key = 'net:' || json_extract(data, '$.resource.sourceAddress') || '>' || json_extract(data, '$.resource.address')
  || ':' || json_extract(data, '$.resource.port') || '/' || json_extract(data, '$.resource.protocol');
CREATE INDEX grants_resource ON grants (target_id, resource_key);
`,
  },
  {
    version: 4,
    name: 'break-glass',
    sql: `
-- Emergency access requests (two-person rule) and their post-event reviews; the record is JSON,
-- the columns are what the engine looks requests up by.
CREATE TABLE break_glass (
  id          TEXT PRIMARY KEY,
  state       TEXT NOT NULL CHECK (state IN ('requested','approved','closed')),
  requester   TEXT NOT NULL,
  review      TEXT,
  created_at  INTEGER NOT NULL,
  data        TEXT NOT NULL
);
CREATE INDEX break_glass_state ON break_glass (state);
CREATE INDEX break_glass_review ON break_glass (review);
`,
  },
  {
    version: 5,
    name: 'portal',
    sql: `
-- The vendor portal. Session ids, CSRF tokens and OIDC state are stored as SHA-256 hashes only.
CREATE TABLE portal_logins (
  state_hash     TEXT PRIMARY KEY,
  data           TEXT NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE TABLE portal_sessions (
  id_hash        TEXT PRIMARY KEY,
  technician_id  TEXT NOT NULL,
  vendor_id      TEXT,
  subject        TEXT NOT NULL,
  csrf_hash      TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);
-- A credential waits here, AES-256-GCM encrypted, until collected; then only the tombstone stays.
-- One row per entry on a target (target, technician, resource), as the target keeps one live
-- certificate per entry even when grants of several orders share it.
CREATE TABLE portal_credentials (
  entry_key      TEXT PRIMARY KEY,
  grant_id       TEXT NOT NULL,
  sealed         TEXT,
  not_after      INTEGER NOT NULL,
  stored_at      INTEGER NOT NULL,
  collected_at   INTEGER,
  collected_by   TEXT
);
`,
  },
  {
    version: 6,
    name: 'staff-sessions',
    sql: `
-- Security staff signed in to the staff pages. Apart from the vendor portal's sessions, so that a
-- portal cookie can never be read as a staff session. The role is the one the provider's claims
-- mapped to at sign-in; ids and CSRF tokens are stored as SHA-256 hashes only.
CREATE TABLE staff_sessions (
  id_hash        TEXT PRIMARY KEY,
  subject        TEXT NOT NULL,
  name           TEXT NOT NULL,
  role           TEXT NOT NULL,
  csrf_hash      TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);
`,
  },
  {
    version: 7,
    name: 'token-owners',
    sql: `
-- A token is held by a person (its owner, canonical as src/domain/ids.ts makes it): the two-person
-- rules compare owners, never token names. Tokens made before have none and can't approve anything.
ALTER TABLE api_tokens ADD COLUMN owner TEXT;
-- When a token was last accepted; written at most once a minute per token.
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
-- The person a staff member signed in as (auth.oidc.personClaim), for the kill switch's second-person rule.
ALTER TABLE staff_sessions ADD COLUMN person TEXT;
`,
  },
  {
    version: 8,
    name: 'approved-scope',
    sql: `
-- What each order named when it was last approved (JSON, domain ApprovedScope), kept with the order
-- and updated in the same transaction as it: a later revision that widens the order is held to it.
ALTER TABLE work_orders ADD COLUMN approved_scope TEXT;
`,
  },
];
