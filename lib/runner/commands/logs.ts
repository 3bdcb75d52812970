import { Option } from 'commander';
import { RefusedError } from '../../errors.js';
import { Component, componentSelector, SandstoreContainers } from '../../labels.js';
import { rules } from '../../validation.js';
import { followLogs, printLogs } from '../logs.js';
import { duration, ruled, type ClusterCommand } from './command.js';

interface LogsOptions {
  readonly pod?: string;
  readonly previous?: boolean;
  readonly container?: string;
  readonly since?: number;
}

/** `logs` (Flow 5): every Sand Store pod's events as they happen, or one container's (previous) logs. */
export const logsCommand: ClusterCommand<LogsOptions> = {
  name: 'logs',
  description: "follow every Sand Store pod's logs, prefixed by pod (Flow 5)",
  configure: (command) =>
    command
      // Both go into a request's path or query: checked before anything is sent.
      .addOption(new Option('--pod <name>', 'one pod only').argParser(ruled(rules.dnsSubdomain)))
      .option('--previous', 'the previous (crashed) container of --pod')
      .addOption(
        new Option(
          '--container <name>',
          `one container: ${SandstoreContainers.events} (Sand Store's events, followed from its ` +
            `log file) or ${SandstoreContainers.node} (the program's own output: fatal errors, ` +
            `panics); default: both when following, ${SandstoreContainers.events} with --pod, ` +
            `${SandstoreContainers.node} with --previous`,
        ).argParser(ruled(rules.dnsLabel)),
      )
      .addOption(new Option('--since <duration>', 'only lines newer than this, e.g. 10m').argParser(duration)),
  run: async (ctx, opts) => {
    if (opts.previous && !opts.pod)
      throw new RefusedError('--previous needs --pod=<name>: previous logs belong to one container. Nothing was sent.');
    if (opts.pod) {
      // A crash is the program's own output; a live pod's story is its event log.
      const container = opts.container ?? (opts.previous ? SandstoreContainers.node : SandstoreContainers.events);
      await printLogs(ctx.kube, ctx.report, {
        namespace: ctx.namespace,
        pod: opts.pod,
        container,
        previous: Boolean(opts.previous),
        sinceSeconds: opts.since,
      });
      return;
    }
    await followLogs(ctx.kube, ctx.report, {
      namespace: ctx.namespace,
      labelSelector: componentSelector(ctx.profile.name, Component.dataPlane),
      containers: opts.container ? [opts.container] : [SandstoreContainers.events, SandstoreContainers.node],
      sinceSeconds: opts.since,
      signal: ctx.signal!,
    });
  },
};
