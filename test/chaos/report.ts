/** docs/reliability.md, written by the chaos suite from the figures it measured. */
export interface RunFigures {
  flows: number
  concurrency: number
  finalized: number
  failed: number
  stuck: number
  requestsPerFlow: { p50: number; p95: number; max: number }
  finalizeCallsPerFlow: { p50: number; max: number }
  finalizeRetriesIdentical: boolean
  unhandledRejections: number
  openHandlesAfter: string[]
  seconds: number
}

export interface ChaosFigures {
  date: string
  machine: string
  profile: object
  good?: RunFigures
  bad?: { flows: number; right: number; byStory: Record<string, { flows: number; right: number; reasons: Record<string, number> }>; stuck: number; unhandledRejections: number; openHandlesAfter: string[] }
  backend?: { flows: number; finalized: number; kills: number; initiatesPerFlowMax: number; finalizePayloadsIdentical: boolean; finalizeCallsMax: number; seconds: number }
  fuzz?: { clientRuns: number; machineRuns: number }
}

const pct = (n: number, d: number) => (d === 0 ? '—' : `${((100 * n) / d).toFixed(1)} %`)
const list = (a: string[]) => (a.length === 0 ? 'none' : a.join(', '))

export function reliabilityMarkdown(f: ChaosFigures): string {
  const g = f.good
  const b = f.bad
  const k = f.backend
  return `# Reliability

<!-- The figures below are written by \`npm run test:chaos\` (test/chaos). Do not edit them by hand. -->

Measured ${f.date} on ${f.machine}.

## Chaos suite figures

### 1. Stories that end well, with faults injected

Every flow runs through \`runIdentification\` over real loopback HTTP against \`startSimulator()\`,
with a fault profile drawn per request from a seeded generator:

\`\`\`json
${JSON.stringify(f.profile, null, 2)}
\`\`\`

${
  g
    ? `| figure | value | bar |
|---|---|---|
| flows (at once) | ${g.flows} (${g.concurrency}) | ≥ 500 (≥ 50) |
| finalized | ${g.finalized} (${pct(g.finalized, g.flows)}) | 100 % |
| stuck | ${g.stuck} | 0 |
| failed | ${g.failed} | 0 |
| API requests per flow, p50 / p95 / max | ${g.requestsPerFlow.p50} / ${g.requestsPerFlow.p95} / ${g.requestsPerFlow.max} | — |
| finalize calls per flow, p50 / max | ${g.finalizeCallsPerFlow.p50} / ${g.finalizeCallsPerFlow.max} | — |
| every finalize retry carried the same payload | ${g.finalizeRetriesIdentical ? 'yes' : '**no**'} | yes |
| unhandled rejections | ${g.unhandledRejections} | 0 |
| handles and timers left open after every flow ended | ${list(g.openHandlesAfter)} | none |
| wall time | ${g.seconds.toFixed(1)} s | — |`
    : '_not run_'
}

### 2. Stories that end badly

${
  b
    ? `The same faults, over stories whose end is a failure: each must end in its own reason.

| story | flows | right reason | reasons seen |
|---|---|---|---|
${Object.entries(b.byStory)
  .map(([story, s]) => `| ${story} | ${s.flows} | ${s.right} (${pct(s.right, s.flows)}) | ${Object.entries(s.reasons).map(([r, n]) => `${r}: ${n}`).join(', ')} |`)
  .join('\n')}
| **all** | ${b.flows} | ${b.right} (${pct(b.right, b.flows)}) | stuck: ${b.stuck}, unhandled rejections: ${b.unhandledRejections}, open handles after: ${list(b.openHandlesAfter)} |`
    : '_not run_'
}

### 3. The backend service on SQLite, killed with SIGKILL twice mid-run

${
  k
    ? `| figure | value | bar |
|---|---|---|
| flows | ${k.flows} | 200 |
| SIGKILLs of the serving process (each followed by a restart on the same SQLite file) | ${k.kills} | 2 |
| finalized | ${k.finalized} (${pct(k.finalized, k.flows)}) | 100 % |
| initiate requests per flow, max | ${k.initiatesPerFlowMax} | 1 |
| finalize calls per flow, max | ${k.finalizeCallsMax} | — |
| finalize payloads identical per flow | ${k.finalizePayloadsIdentical ? 'yes' : '**no**'} | yes |
| wall time | ${k.seconds.toFixed(1)} s | — |`
    : '_not run_'
}

### 4. Fuzzing

${f.fuzz ? `${f.fuzz.clientRuns.toLocaleString('en')} runs of arbitrary answers into the client (it only ever throws \`TenNPayError\`, never hangs, never pollutes a prototype) and ${f.fuzz.machineRuns.toLocaleString('en')} runs of arbitrary event sequences into the chart (it never throws, never leaves its states, reaches \`finalized\` only after a \`DOCUMENT_SIGN_SUCCESS\`). \`npm test\` runs 500 of each.` : '_not run_'}

## Retry policy

- **One owner.** The chart retries; ky's own retry is off. Every retry is visible to the
  deadlines, to persistence and to these figures.
- **What is retried.** Errors with \`retryable: true\`: \`transient\` (408, 429, 5xx), \`network\`
  (resets, refused connections), \`timeout\` (no answer within \`requestTimeoutMs\`) and
  \`bad-response\` (HTML from a proxy, cut-off or wrongly shaped JSON). A \`401\` is retried once by
  the client with a forced token refresh; a second \`401\` is \`unauthorized\` and ends the flow, as
  do \`400\`/\`404\` (\`rejected\`).
- **When.** On the poll schedule: \`intervalMs\` (2 s) for 20 s after the last status change,
  then backing off to \`maxIntervalMs\` (5 s), ±10 % jitter, never sooner than \`Retry-After\`.
- **Until when.** Initiate and each polling phase: \`phaseTimeoutMs\` (120 s) after the last status
  change, counted from absolute times kept in the snapshot (a restart does not reset it). Finalize:
  \`finalizeTimeoutMs\` (10 min). Then \`failed\` with reason \`timeout\`, \`retryable: true\`, and the
  last error in \`failure.lastError\`.
- **Finalize is idempotent** at the provider: its payload is fixed in the snapshot when
  \`DOCUMENT_SIGN_SUCCESS\` is first seen, so every retry — in this process or after a restart —
  sends the same bytes.

## What is persisted, and why it is safe

A persisted flow is \`{ format, version, userId, userType, savedAt, snapshot }\`, where
\`snapshot\` is XState's persisted snapshot of the chart: plain JSON with the user, the polling
options, the URLs the provider gave (already checked), the last status and message, the
absolute deadline and next-attempt times, the last error (\`{ kind, httpStatus, message }\`), the
fixed finalize payload and the result. **Never** the access token, a client, or a function:
the token lives only inside \`getAccessToken\` and the request that uses it, and error messages
name the call and the answer, never the \`Authorization\` header. A test runs every scenario with
recognisable tokens and scans snapshots, the memory, file and Web Storage stores, error messages
and stacks, inspection events and CLI output for them.

A stored value is checked before use (format, version, user, top-level state); anything else is
rejected with a warning and the flow starts afresh — never a crash. Requests that may run twice
after a restore are idempotent: the status \`GET\`, and finalize with its fixed payload. Initiate
may run twice if a process dies while it is in flight; with \`isRestartIdentification: false\` the
provider answers with the session already in progress.

## Threat model

| threat | what the library does |
|---|---|
| The token leaks (logs, storage, error reports, URLs) | kept out of snapshots, stores, errors, inspection and CLI output (tested); in a backend the token endpoint's client credentials and password never leave the server, and views carry no secret |
| The provider (or a man in the middle, or a bug) hands out a hostile URL | every URL passes \`isSafeUrl\` before anything may open it: \`https:\` only (\`http:\` on loopback for the simulator), no credentials in the URL, no white space, control characters or backslashes, and a host in \`allowedHosts\` when given (exact match, so IDN look-alikes and \`evil.example@host\` tricks fail); an unsafe URL ends the flow in \`unsafe-url\` and is never stored or handed to a navigator |
| Redirect spoofing: someone opens the Success URL without doing the step | a Success redirect is only a hint that starts polling; only the status endpoint moves the flow on, and \`finalized\` is reachable only after \`DOCUMENT_SIGN_SUCCESS\` was observed (a property test checks this for arbitrary event sequences) |
| A redirect for another user's flow | the backend handler asks \`authorize(request, flowId)\` on every route (default: deny) |
| Two tabs or two processes drive one flow | in the browser the workers wait for a Web Lock (or a lease); in a backend one service owns a store, and one flow per \`(userType, userId)\` |
| Strings from the provider end up in a page | the demos render every API string as text, never as HTML |
| A corrupt or foreign stored snapshot | rejected with a clear warning; the flow starts afresh |
`
}
