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

/** What a file system error code means, in words: the cause a message names beside the path. */
const FILE_SYSTEM_CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'a read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'it already exists',
  ENOTEMPTY: 'the directory is not empty',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on the machine',
  EIO: 'an input/output error (the disk or its file system failed)',
  EFBIG: 'the file is too large for the file system',
  EXDEV: 'it is on another file system',
  EBUSY: 'it is busy (a mount point, or in use)',
};

/** An error from a file system call: it names the path it failed on. */
export type FileSystemError = NodeJS.ErrnoException & { code: string; path: string };

export function isFileSystemError(err: unknown): err is FileSystemError {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' && typeof e.path === 'string' && !(err instanceof CommandError);
}

/** The cause in words, with the code for a search: "no space left on the device (ENOSPC)". */
export function fileSystemCause(err: NodeJS.ErrnoException): string {
  const code = err.code ?? 'unknown';
  return `${FILE_SYSTEM_CAUSES[code] ?? err.message} (${code})`;
}

/**
 * One sentence for a file system call that failed on `err.path`, naming the path and the cause;
 * `outcome` says what became of the output (e.g. "the previous output is unchanged").
 */
export function fileSystemFailure(err: FileSystemError, outcome?: string): FailedError {
  const what = err.syscall ? `${err.syscall} ` : '';
  return new FailedError(`cannot ${what}${err.path}: ${fileSystemCause(err)}${outcome ? `; ${outcome}` : ''}`);
}
