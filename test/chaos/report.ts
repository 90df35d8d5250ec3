/** docs/reliability.md, written by the chaos suite from the figures it measured. */
import type { HostileFigures, Spread } from './hostile.js'

export interface RunFigures {
  transport: 'loopback HTTP' | 'in process'
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
  /** API requests of all flows, and how many of them got each injected fault. */
  apiRequests: number
  faultsServed: Record<string, number>
  /** Connections the other origin (where the redirect faults point) received. */
  otherOriginRequests: number
  /** The largest RSS growth of the process (client and simulator) during the run. */
  rssPeakGrowthMb: number
  /** Of a 20 ms timer in the same process, over the whole run (in-process run only). */
  maxTimerLagMs?: number
}

export interface ChaosFigures {
  date: string
  machine: string
  profile: object
  /** The machine's 1-minute load average when the run started and when it ended (other work on the machine shows here). */
  loadAverage?: { start: number; end?: number }
  good?: RunFigures
  goodInProcess?: RunFigures
  bad?: {
    flows: number
    right: number
    byStory: Record<string, { flows: number; right: number; reasons: Record<string, number> }>
    stuck: number
    unhandledRejections: number
    openHandlesAfter: string[]
    /** The token endpoint's 307/308 answers, connections the other origin received, API requests sent without a token. */
    tokenRedirects: number
    otherOriginRequests: number
    apiRequestsWithoutToken: number
  }
  backend?: { flows: number; finalized: number; kills: number; initiatesPerFlowMax: number; finalizePayloadsIdentical: boolean; finalizeCallsMax: number; seconds: number }
  fuzz?: { clientRuns: number; machineRuns: number }
  hostile?: HostileFigures
}

const pct = (n: number, d: number) => (d === 0 ? '—' : `${((100 * n) / d).toFixed(1)} %`)
const list = (a: string[]) => (a.length === 0 ? 'none' : a.join(', '))
const counts = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ') || 'none'
const ms = (x: Spread) => `${x.min} / ${x.p50} / ${x.max} ms`

/** The fault kinds of issue 9 and the item each stands for. */
const HOSTILE_FAULTS: [string, string][] = [
  ['refused', 'item 1: refused at once (in process: a rejection with no I/O; over HTTP: the socket dropped)'],
  ['redirect', 'item 4: a `307`/`308` to another origin'],
  ['slow-body', 'item 6: headers at once, then one byte a second'],
  ['huge-body', 'item 7: a 16 MiB body without `Content-Length`'],
]

function goodTable(g: RunFigures): string {
  const hostile = HOSTILE_FAULTS.map(([k, what]) => `| ${what} | ${g.faultsServed[k] ?? 0} | > 0 |`).join('\n')
  return `| figure | value | bar |
|---|---|---|
| flows (at once) | ${g.flows} (${g.concurrency}) | ≥ 500 (≥ 50) |
| finalized | ${g.finalized} (${pct(g.finalized, g.flows)}) | 100 % |
| stuck | ${g.stuck} | 0 |
| failed | ${g.failed} | 0 |
| API requests per flow, p50 / p95 / max | ${g.requestsPerFlow.p50} / ${g.requestsPerFlow.p95} / ${g.requestsPerFlow.max} | max ≤ 100 |
| finalize calls per flow, p50 / max | ${g.finalizeCallsPerFlow.p50} / ${g.finalizeCallsPerFlow.max} | — |
| every finalize retry carried the same payload | ${g.finalizeRetriesIdentical ? 'yes' : '**no**'} | yes |
| API requests in all, and the faults injected into them | ${g.apiRequests}: ${counts(g.faultsServed)} | — |
${hostile}
| connections the other origin received | ${g.otherOriginRequests} | 0 |
| unhandled rejections | ${g.unhandledRejections} | 0 |
| handles and timers left open after every flow ended | ${list(g.openHandlesAfter)} | none |
| RSS growth of the process, peak | ${g.rssPeakGrowthMb} MB | — |${g.maxTimerLagMs !== undefined ? `\n| lateness of a 20 ms timer in the same process, max | ${g.maxTimerLagMs} ms | — |` : ''}
| wall time | ${g.seconds.toFixed(1)} s | — |`
}

function hostileSection(h: HostileFigures | undefined): string {
  if (!h) return '_not run_'
  const parts: string[] = []
  parts.push(`Measured by the chaos suite's last test (\`test/chaos/hostile.ts\`), against loopback servers and the
in-process simulator; each bar is the issue's.`)
  if (h.spin) {
    const p = h.spin.polling
    parts.push(`### Item 1: a transport that answers without I/O

A flow with \`phaseTimeoutMs: ${p['phaseTimeoutMs']}\`, \`intervalMs: ${p['intervalMs']}\`, \`maxIntervalMs: ${p['maxIntervalMs']}\`, run
through \`runIdentification\` until it ends, while a 20 ms timer re-arms itself elsewhere in the process.
Time to the end is min / median / max.

| transport | runs | outcome | time to the end | 20 ms timer, max lateness | requests per run, max | bar |
|---|---|---|---|---|---|---|
${h.spin.variants.map((v) => `| ${v.name} | ${v.runs} | ${counts(v.outcomes)} | ${ms(v.msToEnd)} | ${v.maxTimerLagMs} ms | ${v.requestsPerRun.max} | \`failed\`/\`timeout\` within 2 s, lateness < 250 ms |`).join('\n')}`)
  }
  if (h.cli) {
    parts.push(`The CLI repro, ${h.cli.runs} runs one after the other (wall time from spawn to exit, Node start-up included;
the CLI built from the current sources with the \`npm run build\` compiler settings):

\`\`\`sh
${h.cli.command}
\`\`\`

| runs | exit codes | wall time, min / median / max | bar |
|---|---|---|---|
| ${h.cli.runs} | ${counts(h.cli.exitCodes)} | ${h.cli.seconds.min} / ${h.cli.seconds.p50} / ${h.cli.seconds.max} s | exit 1 in about 3 s, 20 of 20 |`)
  }
  if (h.slowBody) {
    const b = h.slowBody
    parts.push(`### Item 6: a body that trickles

A server sends the headers at once, then one byte every ${b.byteEveryMs} ms; the client has
\`requestTimeoutMs: ${b.requestTimeoutMs}\`. ${b.runs} calls one after the other (status, initiate, finalize in turn).

| figure | value | bar |
|---|---|---|
| errors | ${counts(b.errors)} | \`timeout\` every time |
| time from the call to the error, min / median / max | ${ms(b.msToError)} | ≈ \`requestTimeoutMs\` (${b.requestTimeoutMs} ms) |
| sockets the server saw close | ${b.socketsClosed} of ${b.runs} | all |
| from the error to the server seeing the socket close, min / median / max | ${ms(b.msErrorToSocketClosed)} | — |
| body bytes the server had sent by then, max | ${b.bytesSent.max} | — |

In the flows of run 1 and 1b the same fault (one byte a second against a 600 ms timeout) is
retried like any timeout, and every flow finalizes.`)
  }
  if (h.hugeBody) {
    const x = h.hugeBody
    const mb = Math.round(x.answerBytes / 1024 / 1024)
    parts.push(`### Item 7: a huge body

The simulator over loopback HTTP answers the status with ${mb} MiB (valid JSON, no \`Content-Length\`,
generated as it is read); the client has the default \`maxResponseBytes\` (${x.maxResponseBytes} bytes).
Measured in a fresh child process (\`test/chaos/hugeBodyChild.ts\`); RSS is the whole process
(client and simulator), sampled every 5 ms.

| figure | value | bar |
|---|---|---|
| one ${mb} MiB status answer: the error | ${x.single.error.replace(/https?:\/\/127\.0\.0\.1:\d+/g, '…').replace(/\|/g, '\\|')} | \`bad-response\` |
| one ${mb} MiB status answer: RSS growth, peak (baseline ${x.single.rssBaselineMb} MB) | ${x.single.rssGrowthMb} MB | < 100 MB |
| a whole flow, about every other API answer ${mb} MiB: outcome | ${x.flow.outcome} | finalized |
| that flow: ${mb} MiB answers / API requests | ${x.flow.hugeAnswers} / ${x.flow.apiRequests} | — |
| that flow: RSS growth, peak | ${x.flow.rssGrowthMb} MB | < 100 MB |`)
  }
  if (h.tokenDown) {
    const t = h.tokenDown
    parts.push(`### Item 9: the token endpoint is down

${t.flows} flows polling phase A every ${t.pollIntervalMs} ms share one \`createPasswordGrantTokenSource\`; the token endpoint
answers \`503\` to everything, for ${t.seconds} s.

| figure | value | bar |
|---|---|---|
| token requests in ${t.seconds} s | ${t.tokenRequests} | ≤ 15 |
| token requests in each second | ${t.tokenRequestsBySecond.join(', ')} | — |
| API requests sent (there is no token to send them with) | ${t.apiRequests} | 0 |`)
  }
  return parts.join('\n\n')
}

export function reliabilityMarkdown(f: ChaosFigures): string {
  const g = f.good
  const b = f.bad
  const k = f.backend
  return `# Reliability

<!-- The figures below are written by \`npm run test:chaos\` (test/chaos). Do not edit them by hand. -->

Measured ${f.date} on ${f.machine}${
    f.loadAverage ? `; the machine's 1-minute load average was ${f.loadAverage.start} when the run started and ${f.loadAverage.end ?? '?'} when it ended` : ''
  }.

## Chaos suite figures

### 1. Stories that end well, with faults injected

Every flow runs through \`runIdentification\` over real loopback HTTP against \`startSimulator()\`,
with a fault profile drawn per request from a seeded generator:

\`\`\`json
${JSON.stringify(f.profile, null, 2)}
\`\`\`

${g ? goodTable(g) : '_not run_'}

### 1b. The same, in process

The same fault profile (another seed) with the client over \`simulator.fetch\`: no socket at all, so a
refusal rejects with no I/O and nothing but the chart's own timers paces the retries.

${f.goodInProcess ? goodTable(f.goodInProcess) : '_not run_'}

### 2. Stories that end badly

${
  b
    ? `The same faults, over stories whose end is a failure: each must end in its own reason.

| story | flows | right reason | reasons seen |
|---|---|---|---|
${Object.entries(b.byStory)
  .map(([story, s]) => `| ${story} | ${s.flows} | ${s.right} (${pct(s.right, s.flows)}) | ${Object.entries(s.reasons).map(([r, n]) => `${r}: ${n}`).join(', ')} |`)
  .join('\n')}
| **all** | ${b.flows} | ${b.right} (${pct(b.right, b.flows)}) | stuck: ${b.stuck}, unhandled rejections: ${b.unhandledRejections}, open handles after: ${list(b.openHandlesAfter)} |

In the last story the token endpoint answered a \`307\`/\`308\` to another origin (${b.tokenRedirects} such answers: the
token source does not follow it, fails without retrying and backs off, so the flows waiting for a
token fail with it); that origin received ${b.otherOriginRequests} connections, and ${b.apiRequestsWithoutToken} API requests were sent.`
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

## Hostile provider

${hostileSection(f.hostile)}

## Retry policy

- **One owner.** The chart retries; the client never does (ky only builds the two \`POST\`s, with
  its own timeout, retries and HTTP errors off). Every retry is visible to the deadlines, to
  persistence and to these figures.
- **What is retried.** Errors with \`retryable: true\`: \`transient\` (408, 429, 5xx), \`network\`
  (resets, refused connections), \`timeout\` (no complete answer within \`requestTimeoutMs\`, the
  body included) and \`bad-response\` (HTML from a proxy, cut-off or wrongly shaped JSON, a body
  over \`maxResponseBytes\`, a \`3xx\`: redirects are never followed). A \`401\` is retried once by
  the client with a forced token refresh; a second \`401\` is \`unauthorized\` and ends the step, as
  do \`400\`/\`404\` (\`rejected\`) — except in finalize, where a \`400\` means the provider is behind
  its own status endpoint and is retried like a \`503\`.
- **When.** On the poll schedule: \`intervalMs\` (2 s) for 20 s after the last status change,
  then backing off to \`maxIntervalMs\` (5 s), ±10 % jitter, never sooner than \`Retry-After\`.
  The deadline is checked before every attempt and every attempt waits through a real timer
  turn, so a transport that answers without I/O cannot make the loop spin (the "Hostile
  provider" figures above).
- **Until when.** Initiate and each polling phase: \`phaseTimeoutMs\` (120 s) after the last status
  change, counted from absolute times kept in the snapshot (a restart does not reset it). Finalize:
  \`finalizeTimeoutMs\` (10 min). Then \`failed\` with reason \`timeout\`, \`retryable: true\`, and the
  last error in \`failure.lastError\`. A Fail redirect is confirmed with the status endpoint for
  at most \`polling.failConfirmMs\` (10 s): a status that completes the step goes on as after a
  Success, \`ERROR\` or a vendor code ends in \`vendor-error\`, nothing decisive in \`redirect-failed\`.
- **Finalize is idempotent** at the provider: its payload is fixed in the snapshot when
  \`DOCUMENT_SIGN_SUCCESS\` is first seen, so every retry — in this process, after a restart or
  after \`RETRY\` — sends the same bytes. Every failure in finalize (\`timeout\`, \`404\`,
  \`unauthorized\`) is \`retryable\`: \`RETRY\` finalizes again with that payload, never initiates.
- **The token endpoint** is not hammered: after a failure the password-grant token source backs
  off (about 0.5 s doubling to 30 s, ±20 %, never less than \`Retry-After\`) and, while it does,
  every \`getAccessToken\` rejects at once with the last error and sends nothing; one success
  resets it. A \`3xx\` from the token endpoint is not followed (the form holds the password) and
  is not retryable.

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
| The token leaks (logs, storage, error reports, URLs) | kept out of snapshots, stores, errors, inspection and CLI output (tested); \`TenNPayError.cause\` is a plain \`{ name, message, code }\`, never a \`Request\`, \`Headers\` or options object; provider text in messages and failures is redacted (\`Bearer …\`, \`access_token\`, \`password\`, \`client_secret\` values); in a backend the token endpoint's client credentials and password never leave the server, and views carry no secret |
| The token travels in clear text | \`baseUrl\` and \`tokenUrl\` must be \`https:\`; \`http:\` only on loopback hosts (the simulator) or with an explicit \`allowInsecureHttp: true\` (the CLI: \`--allow-insecure-http\`); anything else is a \`TypeError\` naming the option |
| A redirect from the API or the token endpoint sends the token or the password elsewhere | redirects are never followed (\`redirect: 'manual'\`): a \`3xx\` is a retryable \`bad-response\` from the API and a non-retryable error from the token endpoint; the other origin receives nothing (counted in runs 1, 1b and 2) |
| A hostile or broken provider answers slowly or without end | \`requestTimeoutMs\` covers the whole request, body included, and the socket is released when the attempt ends; bodies are streamed and cut at \`maxResponseBytes\` (1 MiB) → \`bad-response\` (the "Hostile provider" figures) |
| The provider (or a man in the middle, or a bug) hands out a hostile URL | every URL passes \`isSafeUrl\` before anything may open it: \`https:\` only (\`http:\` on loopback for the simulator), no credentials in the URL, no white space, control characters or backslashes, and a host in \`allowedHosts\` when given (exact match, so IDN look-alikes and \`evil.example@host\` tricks fail; an entry without a port allows the default port only, \`host:port\` that port); an unsafe URL ends the flow in \`unsafe-url\` and is never stored or handed to a navigator |
| Redirect spoofing: someone opens the Success URL without doing the step | a Success redirect is only a hint that starts polling; only the status endpoint moves the flow on, and \`finalized\` is reachable only after \`DOCUMENT_SIGN_SUCCESS\` was observed (a property test checks this for arbitrary event sequences) |
| A forged Fail redirect (a cross-site link) ends a flow the user completed | a Fail redirect is a hint too: the flow polls the status endpoint for up to \`failConfirmMs\` and goes on if the provider recorded the step; the backend handler's \`/success\` and \`/fail\` answer \`GET\` only |
| A redirect for another user's flow | the backend handler asks \`authorize(request, flowId)\` on every route (default: deny) |
| Two tabs or two processes drive one flow | in the browser the workers wait for a Web Lock (or a lease); in a backend one service owns a store, and one flow per \`(userType, userId)\` |
| Strings from the provider end up in a page | the demos render every API string as text, never as HTML |
| A corrupt or foreign stored snapshot | rejected with a clear warning; the flow starts afresh |
`
}
