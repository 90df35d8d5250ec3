/**
 * Redaction of credentials in text from elsewhere (provider bodies, status messages, underlying
 * errors) before it reaches an error, a failure, a view or a log. Pure: the chart and the client share it.
 */

const KEYS = 'access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|password|passwd|authorization'
/** `"key": "value"` (or a bare JSON value) in JSON; a string cut short runs to the end of the text. */
const JSON_PAIR = new RegExp(`("(?:${KEYS})"\\s*:\\s*)(?:"(?:[^"\\\\]|\\\\[^])*(?:"|$)|[^,}\\]\\s]+)`, 'gi')
/** The same inside a JSON string: `\\"key\\": \\"value\\"`. */
const ESCAPED_JSON_PAIR = new RegExp(`(\\\\"(?:${KEYS})\\\\"\\s*:\\s*)\\\\"(?:[^\\\\]|\\\\[^"])*(?:\\\\"|\\\\?$)`, 'gi')
/** `key=value` in a form or a query string (form-encoded values hold no `;` or `,`). */
const FORM_PAIR = new RegExp(`\\b(${KEYS})=(?:\\[redacted\\]|[^&\\s"'<>;,]*)`, 'gi')
/** `Bearer <anything>`. */
const BEARER = /\b(Bearer)\s+(?:\[redacted\]|[^\s"'<>\\;,]+)/gi
/** `key: value` in a header-like line: the credentials after `Bearer`/`Basic`, else the rest of the line. */
const HEADER_PAIR = new RegExp(
  `\\b(${KEYS})([ \\t]*:[ \\t]*)(?![ \\t])(?:(Bearer|Basic)[ \\t]+(?:\\[redacted\\]|[^\\s"'<>\\\\;,]+)|\\[redacted\\]|[^\\r\\n]*)`,
  'gi',
)

/**
 * Removes credentials from text that came from elsewhere (a provider's body, an underlying
 * error): every occurrence of `secrets` (also URL- and JSON-encoded; secrets shorter than 4
 * characters are left to the patterns), `Bearer <anything>`, and the values of `access_token`,
 * `refresh_token`, `id_token`, `client_secret`, `password` and `authorization` written as JSON
 * (`"key":"value"`), as a form (`key=value`) or as a header (`key: value`). Idempotent: text
 * already redacted stays as it is.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
  if (secrets.length > 0) {
    const forms = new Set<string>()
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < 4) continue
      forms.add(s)
      forms.add(encodeURIComponent(s))
      forms.add(new URLSearchParams({ s }).toString().slice(2))
      forms.add(JSON.stringify(s).slice(1, -1))
    }
    for (const f of [...forms].sort((a, b) => b.length - a.length)) if (out.includes(f)) out = out.split(f).join('[redacted]')
  }
  return out
    .replace(JSON_PAIR, '$1"[redacted]"')
    .replace(ESCAPED_JSON_PAIR, '$1\\"[redacted]\\"')
    .replace(FORM_PAIR, '$1=[redacted]')
    .replace(BEARER, '$1 [redacted]')
    .replace(HEADER_PAIR, (_m, key: string, sep: string, scheme: string | undefined) => `${key}${sep}${scheme ? `${scheme} ` : ''}[redacted]`)
}
