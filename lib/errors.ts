/**
 * Failures the user can act on. Each carries the exit code the README promises and the lines that
 * say what to do next, so that the CLI prints `error: <message>` and the details, and exits with
 * `exitCode`, without knowing any failure by name. Anything else that reaches the CLI is a bug.
 *
 * Exit codes: 1 the operation failed; 2 refused before sending anything; 130 interrupted.
 */
export class CommandError extends Error {
  private readonly lines: string[];

  public constructor(
    message: string,
    public readonly exitCode: 1 | 2 | 130,
    details: readonly string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
    this.lines = [...details];
  }

  /** Lines printed under the message: what is wrong in detail, and how to go on. */
  public get details(): readonly string[] {
    return this.lines;
  }

  /** Adds lines (e.g. how far a deploy got) as the error passes through a command; returns it. */
  public withDetails(...lines: string[]): this {
    this.lines.push(...lines);
    return this;
  }
}

/** Refused before any request was sent or anything was built (exit code 2): nothing changed. */
export class RefusedError extends CommandError {
  public constructor(message: string, details: readonly string[] = []) {
    super(message, 2, details);
  }
}

/** The operation was attempted and failed (exit code 1). */
export class FailedError extends CommandError {
  public constructor(message: string, details: readonly string[] = []) {
    super(message, 1, details);
  }
}
