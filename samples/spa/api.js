// Calling the API and reading its error contract (README.md, "Error contract").

/** A refusal from the API: its status, JSON body and the headers a frontend acts on. */
export class ApiError extends Error {
  constructor(path, status, body, headers) {
    super(`${path}: ${status} ${body.error || ""} ${body.error_description || ""}`.trim());
    this.path = path;
    this.status = status;
    this.error = body.error || "";
    this.description = body.error_description || "";
    this.challenge = parseBearerChallenge(headers.get("WWW-Authenticate"));
    this.retryAfter = parseRetryAfter(headers.get("Retry-After"));
    this.bodyClaims = typeof body.claims === "string" ? body.claims : null;
  }

  /** The claims a Conditional Access policy asks for (JSON text), or null. */
  get claims() {
    if (this.status !== 401 || this.challenge.error !== "insufficient_claims") return null;
    return decodeClaims(this.challenge.claims) ?? this.bodyClaims;
  }

  get consentRequired() {
    return this.status === 403 && this.error === "consent_required";
  }

  /** Seconds to wait before one retry, for a throttled or unavailable API; else null. */
  get retryDelay() {
    return this.status === 429 || this.status === 503 ? this.retryAfter : null;
  }
}

/** No answer the page may read: the API is down, or its CORS settings leave this origin out. */
export class ApiUnreachable extends Error {}

/** GET `baseUrl + path` with the access token: the parsed JSON, or throws an ApiError. */
export async function getJson(baseUrl, path, accessToken) {
  let response;
  try {
    response = await fetch(baseUrl + path, {
      headers: { Authorization: `Bearer ${accessToken}` },
      cache: "no-store",
    });
  } catch (cause) {
    throw new ApiUnreachable(`no answer from ${baseUrl}`, { cause });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(path, response.status, body, response.headers);
  return body;
}

/**
 * The auth-params of a `Bearer` challenge (RFC 7235 section 2.1) as an object, e.g.
 * `Bearer realm="api://x", error="insufficient_claims", claims="eyJ..."`.
 */
export function parseBearerChallenge(header) {
  const params = {};
  const match = /^\s*Bearer(?:\s+(.*))?$/is.exec(header || "");
  if (!match || !match[1]) return params;
  // name = token / quoted-string; a quoted value is consumed whole, so `a=b` inside it is no param.
  const param = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))/g;
  for (const [, name, quoted, token] of match[1].matchAll(param)) {
    params[name.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : token;
  }
  return params;
}

/** The claims JSON text from a base64 (or base64url) `claims` parameter; null if not JSON. */
export function decodeClaims(encoded) {
  if (!encoded || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) return null;
  try {
    const standard = encoded.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(standard), (char) => char.charCodeAt(0));
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    JSON.parse(text);
    return text;
  } catch {
    return null;
  }
}

const MAX_RETRY_AFTER_SECONDS = 300;
// RFC 9110 section 5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$/;

/** Retry-After (RFC 9110 section 10.2.3) in whole seconds, capped; null if absent or malformed. */
export function parseRetryAfter(header) {
  const value = (header ?? "").trim();
  let seconds;
  if (/^[0-9]{1,9}$/.test(value)) {
    seconds = Number(value);
  } else if (HTTP_DATE.test(value)) {
    seconds = Math.ceil((Date.parse(value) - Date.now()) / 1000);
  } else {
    return null;
  }
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS);
}
