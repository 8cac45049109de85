import { ruleFor, type Method } from './roles.js';

/** The HTTP contract, served at /openapi.json. Kept beside the routes it describes. */
const error = { $ref: '#/components/responses/Error' };

/** Security of a /v1 route, read from the route table so the document can't disagree with the guard. */
function guarded(method: Method, path: string) {
  const rule = ruleFor(method, path);
  if (rule.auth !== 'bearer') throw new Error(`${method} ${path} is not a bearer route`);
  return { security: [{ apiToken: [] }, { oidc: [] }], 'x-wogate-min-role': rule.minRole, 'x-wogate-scope': rule.scope, ...(rule.soloRole ? { 'x-wogate-solo-role': rule.soloRole } : {}) };
}

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'wogate', version: '1', description: 'Vendor access only while an approved work order says so.' },
  components: {
    securitySchemes: {
      apiToken: { type: 'http', scheme: 'bearer', description: 'wgt_… token from `wogate token create`; admits the routes whose x-wogate-scope it holds (admin: all)' },
      oidc: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'access token from the provider in auth.oidc (audience auth.oidc.audience); admits the routes whose x-wogate-min-role its role claim reaches (viewer < operator < policy-admin < admin)' },
    },
    responses: {
      Error: {
        description: 'An error with a stable code',
        content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } } } },
      },
    },
  },
  paths: {
    '/v1/hooks/{sourceId}': {
      post: {
        summary: 'Receive a CMMS webhook (Standard Webhooks signature)',
        parameters: [
          { name: 'sourceId', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'webhook-id', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'webhook-timestamp', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'webhook-signature', in: 'header', required: true, schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/json': {} } },
        responses: { '202': { description: 'stored' }, '400': error, '401': error, '404': error, '409': error, '413': error },
      },
    },
    '/v1/grants': {
      get: {
        summary: 'List grants',
        ...guarded('GET', '/v1/grants'),
        parameters: ['state', 'order', 'vendor'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
        responses: { '200': { description: '{ grants: Grant[] }' }, '400': error, '401': error, '403': error },
      },
    },
    '/v1/grants/{id}': {
      get: { summary: 'One grant', ...guarded('GET', '/v1/grants/:id'), responses: { '200': { description: '{ grant }' }, '401': error, '403': error, '404': error } },
    },
    '/v1/grants/{id}/revoke': {
      post: {
        summary: 'Revoke now and keep it off',
        ...guarded('POST', '/v1/grants/:id/revoke'),
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } },
        responses: { '200': { description: '{ grant, stillHeldBy: [{ grant, order, technician, state, validUntil }] }: the live grants of other orders that keep the target entry, so the access, alive' }, '400': error, '401': error, '403': error, '404': error },
      },
    },
    '/v1/access/blocks': {
      get: { summary: 'Access blocked for all orders until lifted', ...guarded('GET', '/v1/access/blocks'), responses: { '200': { description: '{ blocks: AccessBlock[] }' }, '401': error, '403': error } },
    },
    '/v1/access/revoke': {
      post: {
        summary: 'Revoke a technician\'s access to one resource of a target for every order, and block it (ACCESS_BLOCKED) until lifted',
        ...guarded('POST', '/v1/access/revoke'),
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: {
          grantId: { type: 'string', description: 'take the technician, target and resource from this grant' },
          targetId: { type: 'string' }, technicianId: { type: 'string' }, resourceKey: { type: 'string', description: 'net:…, group:…, pam:…, badge:… or cert:…' },
          reason: { type: 'string', minLength: 3, maxLength: 500 },
        } } } } },
        responses: { '200': { description: '{ block, revoked: Holder[], stillHeldBy: Holder[] }' }, '400': error, '401': error, '403': error, '404': error },
      },
    },
    '/v1/access/{id}/lift': {
      post: { summary: 'Lift an access block', ...guarded('POST', '/v1/access/:id/lift'), requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } }, responses: { '200': { description: '{ lifted: AccessBlock }' }, '400': error, '401': error, '403': error, '404': error } },
    },
    '/v1/explain': {
      get: {
        summary: 'Desired grants and denials with reasons',
        ...guarded('GET', '/v1/explain'),
        parameters: [
          { name: 'order', in: 'query', schema: { type: 'string' }, description: '<source>/<id>' },
          { name: 'at', in: 'query', schema: { type: 'string', format: 'date-time' } },
        ],
        responses: { '200': { description: '{ at, grants, denials, nextChangeAt }' }, '400': error, '401': error, '403': error, '404': error },
      },
    },
    '/v1/audit/verify': {
      get: { summary: 'Verify the keyed audit chain, its head and the signed checkpoints (as wogate audit verify)', ...guarded('GET', '/v1/audit/verify'), responses: { '200': { description: '{ ok, count, unkeyed, checkpoints } or { ok: false, check, seq, problem, problems[], count, unkeyed, checkpoints }' }, '401': error, '403': error } },
    },
    '/v1/break-glass': {
      get: { summary: 'Break-glass requests, newest first, with their reviews', ...guarded('GET', '/v1/break-glass'), responses: { '200': { description: '{ requests: BreakGlassRequest[] }' }, '401': error, '403': error } },
      post: {
        summary: 'Request emergency access without a work order; another operator must approve it',
        ...guarded('POST', '/v1/break-glass'),
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['vendorId', 'technicianIds', 'assetIds', 'justification', 'durationMinutes'], properties: {
            vendorId: { type: 'string' }, technicianIds: { type: 'array', items: { type: 'string' } }, assetIds: { type: 'array', items: { type: 'string' } },
            justification: { type: 'string', minLength: 20, maxLength: 2000 }, durationMinutes: { type: 'integer', minimum: 1, description: 'capped at breakGlass.maxDuration on approval' },
          } } } },
        },
        responses: { '201': { description: '{ request }' }, '400': error, '401': error, '403': error },
      },
    },
    '/v1/break-glass/{id}/approve': {
      post: { summary: 'Approve a request (two-person rule: never the requester)', ...guarded('POST', '/v1/break-glass/:id/approve'), responses: { '200': { description: '{ request }' }, '401': error, '403': error, '404': error, '409': error } },
    },
    '/v1/vendors/suspended': {
      get: { summary: 'Vendors suspended by the kill switch', ...guarded('GET', '/v1/vendors/suspended'), responses: { '200': { description: '{ suspended: Suspension[] }' }, '401': error, '403': error } },
    },
    '/v1/vendors/{id}/suspend': {
      post: { summary: 'Kill switch: revoke everything the vendor holds; their orders authorise nothing until reinstated', ...guarded('POST', '/v1/vendors/:id/suspend'), requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } }, responses: { '200': { description: '{ suspension, revoked }' }, '400': error, '401': error, '403': error, '404': error } },
    },
    '/v1/vendors/{id}/reinstate': {
      post: {
        summary: 'Lift a suspension: x-wogate-solo-role alone, or another person than who suspended (403 AUTH_FORBIDDEN; AUTH_NO_PERSON for a token without owner)',
        ...guarded('POST', '/v1/vendors/:id/reinstate'),
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } },
        responses: { '200': { description: '{ reinstated }' }, '400': error, '401': error, '403': error, '404': error },
      },
    },
    '/v1/tokens': {
      get: { summary: 'List API tokens: id, name, owner, scopes, createdAt, expiresAt, lastUsedAt, revokedAt (never the secret or its hash)', ...guarded('GET', '/v1/tokens'), responses: { '200': { description: '{ tokens }' }, '401': error, '403': error } },
    },
    '/v1/tokens/{id}/revoke': {
      post: {
        summary: 'Revoke an API token; its next request gets 401',
        ...guarded('POST', '/v1/tokens/:id/revoke'),
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } },
        responses: { '200': { description: '{ token }' }, '400': error, '401': error, '403': error, '404': error, '409': error },
      },
    },
    '/v1/break-glass/{id}/close': {
      post: {
        summary: 'Withdraw a request or end its access now',
        ...guarded('POST', '/v1/break-glass/:id/close'),
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 3, maxLength: 500 } } } } } },
        responses: { '200': { description: '{ request }' }, '400': error, '401': error, '403': error, '404': error, '409': error },
      },
    },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
    '/readyz': { get: { summary: 'Readiness: a reconcile pass finished recently', responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    '/pki/{targetId}/crl': { get: { summary: 'Certificate revocation list of a certificate target (DER); public, no token', parameters: [{ name: 'targetId', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'application/pkix-crl' }, '404': error } } },
    '/pki/{targetId}/crl.pem': { get: { summary: 'The same CRL, PEM', parameters: [{ name: 'targetId', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'application/x-pem-file' }, '404': error } } },
    '/pki/{targetId}/ca.pem': { get: { summary: 'CA certificate of a certificate target; public, no token', parameters: [{ name: 'targetId', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'application/x-pem-file' }, '404': error } } },
  },
} as const;
