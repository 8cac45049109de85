import { WogateError } from '../domain/index.js';

/**
 * Errors that express, its router and body-parser raise for a request that is wrong (http-errors
 * with a 4xx status: a body that does not match its Content-Encoding, an unsupported encoding or
 * charset, a path parameter that is not valid percent-encoding, ...), as wogate's own client errors.
 * Anything else is not the client's fault and stays a 500. The messages are ours: the libraries'
 * may quote the body or the parameter, and a refusal names the problem, not the input.
 */
export function clientError(err: unknown, hook: boolean): WogateError | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; expose?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined || status < 400 || status > 499) return undefined;
  switch (e.type) {
    case 'entity.too.large':
      return hook ? new WogateError('HOOK_BODY_TOO_LARGE', 'body is larger than this source allows') : new WogateError('BODY_TOO_LARGE', 'request body is larger than this route accepts');
    case 'parameters.too.many':
      return new WogateError('BODY_TOO_LARGE', 'the form has more fields than this route accepts');
    case 'entity.parse.failed':
      return new WogateError(hook ? 'HOOK_BODY_INVALID' : 'BAD_REQUEST', 'request body is not valid JSON');
    case 'encoding.unsupported':
      return new WogateError('UNSUPPORTED_MEDIA_TYPE', 'the Content-Encoding header names an encoding wogate does not accept (identity, gzip, deflate, br)');
    case 'charset.unsupported':
      return new WogateError('UNSUPPORTED_MEDIA_TYPE', 'the Content-Type header names a charset wogate does not accept (utf-8)');
    case 'request.aborted':
      return new WogateError('BAD_REQUEST', 'the request was aborted before its body was read');
    case 'request.size.invalid':
      return new WogateError('BAD_REQUEST', 'the request body is not as long as its Content-Length header says');
    default:
  }
  if (err instanceof URIError) return new WogateError('BAD_REQUEST', 'a path segment is not valid percent-encoding');
  // body-parser gives zlib's decompression failures a plain 400.
  if (status === 400 && typeof (err as { code?: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('Z_')) {
    return new WogateError(hook ? 'HOOK_BODY_INVALID' : 'BAD_REQUEST', 'the body is not encoded as its Content-Encoding header says');
  }
  if (status === 413) return new WogateError(hook ? 'HOOK_BODY_TOO_LARGE' : 'BODY_TOO_LARGE', 'request body is too large');
  if (status === 415) return new WogateError('UNSUPPORTED_MEDIA_TYPE', 'the request body\'s media type is not accepted');
  return new WogateError(hook ? 'HOOK_BODY_INVALID' : 'BAD_REQUEST', 'the request is malformed');
}
