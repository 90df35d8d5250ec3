import { existsSync, readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { isLoopbackHost } from '../adapters/http/transport.js'
import { identificationMachine } from '../machine/identificationMachine.js'
import { chartToMermaid } from '../machine/chart.js'
import { SCENARIOS, type Scenario } from '../simulator/scenarios.js'
import { startSimulator } from '../simulator/server.js'
import { demo } from './demo.js'
import { DEFAULT_WEB_ROOT, startWebDemo } from './webDemo.js'
import { EXIT, UsageError, type CliIo } from './io.js'
import { finalize, initiate, status, wait, type RemoteOptions } from './remote.js'
import { listFlows, showFlow } from './flows.js'

const int = (name: string, min: number, max: number) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`)
  }
  return Number(v)
}
const baseUrl = (v: string) => {
  try {
    const u = new URL(v)
    if (u.protocol === 'https:' || u.protocol === 'http:') return v
  } catch {
    /* fall through */
  }
  throw new InvalidArgumentError('--base-url must be an absolute http(s) URL.')
}

/** `http:` only on loopback or with --allow-insecure-http, as `createHttpApi` requires: a usage error, not a failed call. */
function checkInsecure(o: Record<string, unknown>): void {
  const u = new URL(o['baseUrl'] as string)
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname) && !o['allowInsecureHttp']) {
    throw new UsageError('--base-url must be https: (http: only for loopback hosts, or with --allow-insecure-http)')
  }
}

function remoteCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .requiredOption('--base-url <url>', 'the API base URL, e.g. https://api-test.10npay.com', baseUrl)
    .requiredOption('--user-id <id>', 'the user id (1..2147483647)', int('--user-id', 1, 2147483647))
    .addOption(new Option('--user-type <type>', '0 individual, 1 merchant').choices(['0', '1']).default('0'))
    .option('--token-command <command>', 'a shell command that prints an access token (default: $TENNPAY_TOKEN)')
    .option('--timeout-ms <ms>', 'per-request timeout', int('--timeout-ms', 1, 600_000), 10_000)
    .option('--allow-insecure-http', 'allow an http: --base-url off loopback (the token travels in clear text)', false)
    .option('--json', 'machine-readable output', false)
}

const remoteOpts = (o: Record<string, unknown>): RemoteOptions => (checkInsecure(o), {
  baseUrl: o['baseUrl'] as string,
  allowInsecureHttp: Boolean(o['allowInsecureHttp']),
  userId: o['userId'] as number,
  userType: Number(o['userType']) as 0 | 1,
  timeoutMs: o['timeoutMs'] as number,
  json: Boolean(o['json']),
  ...(typeof o['tokenCommand'] === 'string' && { tokenCommand: o['tokenCommand'] }),
})

/** The package's version (package.json next to dist/ or src/). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Whether the browser demo can be served: a checkout with the demo app's sources (not an installed package). */
const webDemoAvailable = () => existsSync(new URL('../../examples/browser/index.html', import.meta.url))

/** What every command's `--help` ends with: where its output goes and what its exit code means. */
const streams = (stdout: string, codes = '0 success, 1 the flow or the call failed, 2 usage error') =>
  `\nOutput:\n  stdout  ${stdout}\n  stderr  diagnostics: progress (on a terminal), warnings, errors (with --json, errors too go to stdout as JSON)\nExit codes: ${codes}\n`

/** Resolves on SIGINT or SIGTERM. */
function untilInterrupted(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

/**
 * Runs the `10npay-id` command line and returns the exit code: `0` success, `1` the flow or
 * call failed, `2` usage error. Never calls `process.exit`.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok
  const program = new Command('10npay-id')
    .description('Run and inspect the 10npay web identification flow.')
    .version(version(), '-V, --version', 'print the version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })

  program
    .command('demo')
    .description('run a whole flow against an embedded simulator, with simulated user clicks and live progress')
    .addOption(new Option('--scenario <name>', 'the simulated provider behaviour').choices(SCENARIOS as string[]).default('happy'))
    .option('--user-id <id>', 'the simulated user id', int('--user-id', 1, 2147483647), 4242)
    .option('--click-ms <ms>', 'how long the simulated user takes on each page', int('--click-ms', 0, 60_000), 800)
    .addOption(new Option('--fail-at <step>', 'press Fail on this step').choices(['identification', 'signing']))
    .option('--speed <factor>', 'run the simulated provider and the polling this many times faster', int('--speed', 1, 100), 1)
    .option('--json', 'print one JSON summary instead of progress', false)
    .option('--inspect', "watch the flow in Stately's inspector: starts @statelyai/inspect's inspector server and prints what to open", false)
    .option('--inspect-port <port>', 'with --inspect: the inspector server\'s port', int('--inspect-port', 1, 65535), 8080)
    // The browser demo app is served from a checkout of the repository: hidden in an installed package.
    .addOption(new Option('--web', 'serve the browser demo app against the simulator instead, until interrupted (in a checkout)').default(false).hideHelp(!webDemoAvailable()))
    .addOption(new Option('--port <port>', 'with --web: the port (0: a free one)').argParser(int('--port', 0, 65535)).default(0).hideHelp(!webDemoAvailable()))
    .addHelpText('after', streams('progress lines off a terminal, then the outcome, ids and timeline; with --json one JSON summary', '0 finalized, 1 the flow failed, 2 usage error'))
    .action(async (o) => {
      if (o.web) {
        if (!webDemoAvailable()) throw new UsageError('--web serves examples/browser from a checkout of the repository; it is not in the installed package')
        if (!existsSync(new URL('index.html', `file://${DEFAULT_WEB_ROOT}/`))) throw new UsageError('--web needs the demo app built: run `npm run demo:web` in the checkout')
        const web = await startWebDemo({ port: o.port, scenario: o.scenario as Scenario })
        io.stdout.write(o.json ? `${JSON.stringify({ url: web.appUrl })}\n` : `Browser demo at ${web.appUrl} (simulator at ${web.url}). Ctrl-C stops it.\n`)
        await untilInterrupted()
        await web.close()
        return
      }
      code = await demo(
        { json: o.json, scenario: o.scenario as Scenario, userId: o.userId, clickMs: o.clickMs, failAt: o.failAt, speed: o.speed, ...(o.inspect && { inspectPort: o.inspectPort }) },
        io,
      )
    })

  remoteCommand(program, 'initiate', 'start (or with --restart, start anew) the identification of a user: POST initiate')
    .option('--restart', 'isRestartIdentification: true (a brand-new session even if one is in progress)', false)
    .addHelpText('after', streams('the ID-capture URL to open, the status and message; with --json the answer as JSON'))
    .action(async (o) => {
      code = await initiate({ ...remoteOpts(o), restart: Boolean(o.restart) }, io)
    })
  remoteCommand(program, 'status', 'print the identification status of a user')
    .addHelpText('after', streams('the status, the URL and the message; with --json the answer as JSON'))
    .action(async (o) => {
      code = await status(remoteOpts(o), io)
    })
  remoteCommand(program, 'wait', 'poll until phase A or B completes (as after a Success redirect); finalizes nothing')
    .addOption(new Option('--phase <phase>', 'A: until the signing URL; B: until DOCUMENT_SIGN_SUCCESS').choices(['A', 'B']).makeOptionMandatory())
    .option('--phase-timeout-ms <ms>', 'fail after this long without a status change', int('--phase-timeout-ms', 1, 86_400_000), 120_000)
    .option('--interval-ms <ms>', 'the pause between polls after a status change (backs off to 2.5x)', int('--interval-ms', 100, 60_000), 2000)
    .addHelpText('after', streams('the outcome: the signing URL (A), "document signed" (B), or why the phase failed; with --json one JSON object', '0 the phase completed, 1 it failed (timeout, vendor error, …) or a call failed, 2 usage error'))
    .action(async (o) => {
      code = await wait({ ...remoteOpts(o), phase: o.phase, phaseTimeoutMs: o.phaseTimeoutMs, intervalMs: o.intervalMs }, io)
    })
  remoteCommand(program, 'finalize', 'finalize the identification of a user (after DOCUMENT_SIGN_SUCCESS)')
    .option('--callback-id <id>', 'the bTrustAppCallBackId, when the signing provider gave one')
    .addHelpText('after', streams('correlationId and individualId; with --json the answer as JSON'))
    .action(async (o) => {
      code = await finalize({ ...remoteOpts(o), ...(o.callbackId && { callbackId: o.callbackId }) }, io)
    })

  program
    .command('simulate')
    .description('serve the provider simulator on loopback until interrupted')
    .option('--port <port>', 'the port (0: a free one)', int('--port', 0, 65535), 0)
    .option('--host <host>', 'the interface', '127.0.0.1')
    .addOption(new Option('--scenario <name>', 'the default scenario').choices(SCENARIOS as string[]).default('happy'))
    .option('--success-url <url>', "where the fake provider pages send the browser after Complete ({step}, {userId} replaced)")
    .option('--fail-url <url>', 'where they send it after Fail')
    .option('--json', 'print the address and credentials as JSON', false)
    .addHelpText('after', streams('the base URL, the token URL and the demo credentials (client id and secret, user name and password), then nothing until interrupted', '0 stopped by Ctrl-C, 1 could not listen, 2 usage error'))
    .action(async (o) => {
      const sim = await startSimulator({
        port: o.port,
        host: o.host,
        scenario: o.scenario,
        ...((o.successUrl || o.failUrl) && { redirects: { ...(o.successUrl && { success: o.successUrl }), ...(o.failUrl && { fail: o.failUrl }) } }),
      })
      const c = sim.simulator.credentials
      const info = {
        url: sim.url,
        tokenUrl: `${sim.url}/connect/token`,
        scenario: o.scenario,
        clientId: c.clientId,
        clientSecret: c.clientSecret,
        username: c.username,
        password: c.password,
      }
      io.stdout.write(
        o.json
          ? `${JSON.stringify(info)}\n`
          : [
              `Simulator at ${sim.url} (scenario ${o.scenario}); Ctrl-C stops it.`,
              `  API base URL   ${info.url}`,
              `  token URL      ${info.tokenUrl}  (password grant, client credentials in HTTP Basic)`,
              `  client id      ${info.clientId}`,
              `  client secret  ${info.clientSecret}`,
              `  user name      ${info.username}`,
              `  password       ${info.password}`,
              `These are the simulator's demo credentials, not secrets. For example:`,
              `  TENNPAY_TOKEN=$(curl -s -u ${info.clientId}:${info.clientSecret} -d grant_type=password -d client_id=${info.clientId} -d username=${info.username} -d password=${info.password} ${info.tokenUrl} | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token') \\`,
              `    10npay-id initiate --base-url ${info.url} --user-id 42`,
              '',
            ].join('\n'),
      )
      await untilInterrupted()
      await sim.close()
    })

  program
    .command('serve')
    .description('run the backend example (examples/backend): one process on SQLite, or one replica of a cluster with --postgres and --redis; until interrupted')
    .option('--port <port>', 'the port (0: a free one)', int('--port', 0, 65535), 0)
    .option('--db <file>', 'the SQLite file (one process)', 'identifications.db')
    .option('--postgres <url>', 'PostgreSQL connection string: flows in PostgreSQL (with --redis: one replica of many)')
    .option('--redis <url>', 'Redis URL for BullMQ and notifications between replicas (with --postgres)')
    .option('--prefix <prefix>', 'with --redis: the key prefix every replica of the deployment shares', '10npay-example')
    .option('--simulator-url <url>', 'a simulator started elsewhere (10npay-id simulate) instead of an embedded one; replicas share one')
    .option('--session-secret <secret>', "the demo session cookie's key; replicas share one (default: random per process)")
    .option('--json', 'print the address as JSON', false)
    .addHelpText('after', streams('the address to open (with --json as JSON), then nothing until interrupted', '0 stopped by Ctrl-C, 1 could not start (the message says why), 2 usage error'))
    .action(async (o) => {
      if (Boolean(o.postgres) !== Boolean(o.redis)) throw new UsageError('--postgres and --redis go together (a cluster needs both)')
      const example = (await import(new URL('../../examples/backend/server.mjs', import.meta.url).href)) as {
        startBackendExample(o: Record<string, unknown>): Promise<{ url: string; simulatorUrl?: string; close(): Promise<void> }>
      }
      const ex = await example.startBackendExample({
        port: o.port,
        db: o.db,
        ...(o.postgres && { postgres: o.postgres, redis: o.redis, prefix: o.prefix }),
        ...(o.simulatorUrl && { simulatorUrl: o.simulatorUrl }),
        ...(o.sessionSecret && { sessionSecret: o.sessionSecret }),
      })
      const where = o.postgres ? 'flows in PostgreSQL, work through Redis' : `flows in ${o.db}`
      io.stdout.write(
        o.json
          ? `${JSON.stringify({ url: ex.url, simulatorUrl: ex.simulatorUrl ?? o.simulatorUrl ?? null, ...(o.postgres ? { cluster: true } : { db: o.db }) })}\n`
          : `Backend example at ${ex.url} (simulator at ${ex.simulatorUrl ?? o.simulatorUrl}, ${where}). Open it, press Start. Ctrl-C stops it.\n`,
      )
      await untilInterrupted()
      await ex.close()
    })

  const flows = program.command('flows').description("look at the flows a service stored (SQLite read-only, or PostgreSQL): what happened to a user's identification")
  const source = (c: Command) =>
    c
      .option('--db <file>', 'the SQLite file of a one-process service (opened read-only: the service may run)')
      .option('--postgres <url>', 'the PostgreSQL database of the replicas')
      .option('--schema <schema>', 'with --postgres: the store\'s schema (default tenpay_identification)')
      .option('--json', 'machine-readable output', false)
  source(
    flows
      .command('list')
      .description('flows by state, failure reason, user or age, most recently changed first')
      .addOption(new Option('--state <state>', 'only this state').choices(['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized', 'failed']))
      .addOption(new Option('--reason <reason>', 'only failed flows with this reason').choices(['vendor-error', 'timeout', 'unauthorized', 'rejected', 'redirect-failed', 'unsafe-url', 'cancelled']))
      .option('--user-id <id>', 'only this user', int('--user-id', 1, 2147483647))
      .addOption(new Option('--user-type <type>', 'only this user type').choices(['0', '1']))
      .option('--older-than <age>', 'only flows unchanged for this long (90s, 10m, 2h, 3d): the stuck ones')
      .option('--limit <n>', 'at most this many', int('--limit', 1, 10_000), 50),
  )
    .addHelpText('after', streams('a table of flows (id, user, state, failure, last change); with --json the views as JSON'))
    .action(async (o) => {
      code = await listFlows({ ...o, ...(o.userType !== undefined && { userType: Number(o.userType) as 0 | 1 }) }, io)
    })
  source(
    flows
      .command('show')
      .description("one flow and its timeline: state entries, host events (which replica got them), provider requests")
      .argument('[id]', 'the flow id (or --user-id for the user\'s latest flow)')
      .option('--user-id <id>', "the user whose latest flow to show", int('--user-id', 1, 2147483647))
      .addOption(new Option('--user-type <type>', 'with --user-id').choices(['0', '1']).default('0')),
  )
    .addHelpText('after', streams('the flow and a table of its timeline; with --json the view, lease and history as JSON', '0 shown, 1 no such flow or the store failed, 2 usage error'))
    .action(async (id: string | undefined, o) => {
      code = await showFlow({ ...o, ...(id && { id }), userType: Number(o.userType) as 0 | 1 }, io)
    })

  program
    .command('chart')
    .description('print the chart as a Mermaid state diagram')
    .option('--json', 'print the machine definition (machine.toJSON()) instead', false)
    .addHelpText('after', streams('the Mermaid diagram, or with --json the machine definition', '0 success, 2 usage error'))
    .action((o) => {
      io.stdout.write(o.json ? `${JSON.stringify(identificationMachine.toJSON(), null, 2)}\n` : chartToMermaid(identificationMachine))
    })

  program.addHelpText('after', streams('what the command prints (see `10npay-id <command> --help`)'))

  if (argv.length === 0) {
    io.stderr.write(program.helpInformation())
    return EXIT.usage
  }

  try {
    await program.parseAsync(argv, { from: 'user' })
    return code
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok
      return EXIT.usage
    }
    if (err instanceof UsageError) {
      io.stderr.write(`error: ${err.message}\n`)
      return EXIT.usage
    }
    // With --json, stdout always holds one JSON object, an error too; otherwise errors are diagnostics.
    const message = err instanceof Error ? err.message : String(err)
    if (argv.includes('--json')) io.stdout.write(`${JSON.stringify({ error: message, kind: (err as { kind?: string }).kind ?? null })}\n`)
    else io.stderr.write(`error: ${message}\n`)
    return EXIT.failed
  }
}
