import { resolve, join } from 'node:path';
import { Command, Option } from 'commander';
import { defaultDataDir, parseIntFlag } from './cliOptions.ts';
import { registerRemoteCommand } from './remote.ts';
import { registerWorkflowsCommand } from './workflows.ts';

// Daemon code (fastify, SQLite, the executor) loads only for the commands that run daemons, so
// `hearth remote` and `--help` start fast.
const daemons = () => import('./daemons.ts');
const program = new Command('hearth')
  .description('Warm remote runners for Bazel: run Bazel on runners that stay warm, from your laptop or CI.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .enablePositionalOptions();

const executorOptions = (cmd: Command) =>
  cmd
    .option('--max-runners <n>', 'warm runners kept at once (LRU eviction beyond)', parseIntFlag('--max-runners'), 4)
    .option('--max-runner-disk-gb <n>', 'a runner larger than this after a run is not kept', parseIntFlag('--max-runner-disk-gb'), 20)
    .option('--disk-budget-gb <n>', 'idle runners are evicted while all runners use more than this', parseIntFlag('--disk-budget-gb'), 100)
    .option('--bazel <path>', 'Bazel binary runners use (default: $HEARTH_BAZEL, bazelisk/bazel on PATH, or the bundled one)')
    .option('--bazel-user-root <dir>', "Bazel's --output_user_root shared by this executor's runners (default: <data-dir>/bazel-user-root)")
    .option('--isolation <kind>', 'how runners are isolated: bare (a directory) or sandbox (bubblewrap, fixed in-runner paths)', 'bare')
    .option('--snapshots', 'save warm state as chunked snapshots and restore it onto cold runners (needs --isolation sandbox)', false)
    .option('--snapshot-save-policy <policy>', 'always | first-non-default-ref | none-available', 'first-non-default-ref')
    .option('--chunk-cache-gb <n>', 'local cache of snapshot chunks', parseIntFlag('--chunk-cache-gb'), 20)
    .addOption(new Option('--kill-grace-ms <ms>', 'after SIGINT, how long a cancelled step gets before SIGKILL').argParser(parseIntFlag('--kill-grace-ms')).default(5000));

const serverOptions = (cmd: Command) =>
  cmd
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'HTTP port (0 picks a free one)', parseIntFlag('--port'), 8080)
    .option('--public-url <url>', 'URL users and GitHub links use to reach this server')
    .option('--cache-port <n>', 'port of the colocated Bazel remote cache (gRPC; 0 picks a free one)', parseIntFlag('--cache-port'), 8981)
    .option('--no-cache', 'do not run the remote cache')
    .option('--cache-max-gb <n>', 'remote cache size; least recently used blobs are evicted beyond it', parseIntFlag('--cache-max-gb'), 10)
    .addOption(new Option('--executor-timeout-ms <ms>', 'an executor silent this long is lost').argParser(parseIntFlag('--executor-timeout-ms')).default(30_000))
    .addOption(new Option('--heartbeat-interval-ms <ms>').argParser(parseIntFlag('--heartbeat-interval-ms')).default(1000).hideHelp());

executorOptions(
  serverOptions(
    program
      .command('up')
      .description('Start an embedded single node: server + one executor + SQLite + local storage, in the foreground.')
      .option('--data-dir <dir>', 'where the node keeps its database, logs and runners', defaultDataDir()),
  ),
).action(async (opts) => {
  const { makeLogger, startServer, makeExecutor, onShutdown } = await daemons();
  const log = makeLogger();
  const dataDir = resolve(opts.dataDir);
  const server = await startServer({
    dataDir: join(dataDir, 'server'),
    host: opts.host,
    port: opts.port,
    publicUrl: opts.publicUrl,
    executorTimeoutMs: opts.executorTimeoutMs,
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    cache: opts.cache === false ? false : { port: opts.cachePort, maxBytes: opts.cacheMaxGb * 2 ** 30 },
    logger: log.child({ component: 'server' }),
  });
  const executor = await makeExecutor(server.url, join(dataDir, 'executor'), opts, log);
  await executor.start();
  process.stdout.write(
    `hearth is up at ${server.url}\n` +
      (server.cacheAddress ? `  remote cache: ${server.cacheAddress}\n` : '') +
      `  data: ${dataDir}\n  try:  hearth remote --server ${server.url} test //...\n`,
  );
  onShutdown(async () => {
    await executor.stop();
    await server.close();
  });
});

serverOptions(
  program
    .command('server')
    .description('Run the server alone (HTTP API, scheduler, logs). Executors connect to it with `hearth executor`.')
    .option('--data-dir <dir>', 'where the server keeps its database and logs', join(defaultDataDir(), 'server')),
).action(async (opts) => {
  const { makeLogger, startServer, onShutdown } = await daemons();
  const log = makeLogger();
  const server = await startServer({
    dataDir: resolve(opts.dataDir),
    host: opts.host,
    port: opts.port,
    publicUrl: opts.publicUrl,
    executorTimeoutMs: opts.executorTimeoutMs,
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    cache: opts.cache === false ? false : { port: opts.cachePort, maxBytes: opts.cacheMaxGb * 2 ** 30 },
    logger: log.child({ component: 'server' }),
  });
  process.stdout.write(`hearth server listening at ${server.url}\n${server.cacheAddress ? `  remote cache: ${server.cacheAddress}\n` : ''}`);
  onShutdown(() => server.close());
});

executorOptions(
  program
    .command('executor')
    .description('Run an executor that pulls work from a hearth server over HTTP (it never needs the server\'s disk).')
    .requiredOption('--server <url>', 'hearth server URL, e.g. http://build-server:8080', process.env.HEARTH_SERVER)
    .option('--data-dir <dir>', 'where the executor keeps runners', join(defaultDataDir(), 'executor'))
    .option('--id <id>', 'executor id (default: hostname + random suffix)'),
).action(async (opts) => {
  const { makeLogger, makeExecutor, onShutdown } = await daemons();
  const log = makeLogger();
  const executor = await makeExecutor(opts.server, opts.dataDir, opts, log, opts.id);
  await executor.start();
  process.stdout.write(`hearth executor ${executor.id} pulling work from ${opts.server}\n`);
  onShutdown(() => executor.stop());
});

registerRemoteCommand(program);
registerWorkflowsCommand(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`hearth: ${(err as Error).message}\n`);
  process.exit(1);
});
