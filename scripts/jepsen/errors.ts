// Typed errors of the Jepsen harness. Each has a stable `code`; messages may change.

export abstract class JepsenError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bad command line (run.sh exits 2). */
export class UsageError extends JepsenError {
  readonly code = 'JEPSEN_USAGE';
}

/** The machine cannot run the suite: not root, no `ip`/`iptables`, no network namespaces. */
export class EnvironmentError extends JepsenError {
  readonly code = 'JEPSEN_ENVIRONMENT';
}

/** A system command (ip, iptables) failed. */
export class CommandError extends JepsenError {
  readonly code = 'JEPSEN_COMMAND';
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`\`${command.join(' ')}\` failed (exit ${exitCode}): ${stderr.trim().slice(0, 500)}`);
  }
}

/** The cluster did not reach a state the run needs (a node did not start, no leader, ...) in time. */
export class ClusterError extends JepsenError {
  readonly code = 'JEPSEN_CLUSTER';
}
