import { InvalidArgumentError, type Command } from 'commander';

/**
 * Rules every option that takes a value follows, in the synth and the runner alike, applied to a
 * command and all its subcommands once their options are declared:
 *
 * - an empty value (`--context=`, `--profile ''`, `CDK8S_OUTDIR=`) is refused: it is a mistake
 *   (an unset shell variable, a slip of the keyboard), and taking it for "not given" would quietly
 *   fall back to a default, e.g. the profile's kube context instead of the one meant;
 * - a value with surrounding whitespace (`--context=' prod'`, `--timeout=' 5'`) is refused, never
 *   trimmed: it is the value used, or none;
 * - a single-valued option given twice (`--profile=a --profile=b`) is refused rather than the last
 *   one winning: which one was meant is a guess, and the wrong guess acts on the wrong profile.
 *
 * Commander reports the refusal as a usage error (exit code 2 in both CLIs), before any command runs.
 */
export function strictOptionValues(command: Command): Command {
  const given = new Map<string, string>();
  for (const option of command.options) {
    if (!option.required && !option.optional) continue; // a flag: repeating it changes nothing
    const flag = option.long ?? option.short ?? option.flags;
    const parse = option.parseArg;
    option.argParser((value: string, previous: unknown) => {
      const first = given.get(flag);
      if (first !== undefined) {
        throw new InvalidArgumentError(
          `${flag} is given more than once (${JSON.stringify(first)}, then ` +
            `${JSON.stringify(value)}); give it once`,
        );
      }
      given.set(flag, value);
      const env = option.envVar ? ` (or ${option.envVar})` : '';
      if (value.trim() === '') {
        throw new InvalidArgumentError(
          `${flag}${env} is empty; give a value (${option.flags}) or leave the option out`,
        );
      }
      if (value.trim() !== value) {
        throw new InvalidArgumentError(
          `${flag}${env} has surrounding whitespace (${JSON.stringify(value)}); give the value without it`,
        );
      }
      return parse ? parse(value, previous) : value;
    });
  }
  for (const sub of command.commands) strictOptionValues(sub);
  return command;
}
