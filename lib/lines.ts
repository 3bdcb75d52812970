/** Turns chunks into whole lines; a progress bar's "\r" redraws count as line ends too. */
export function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; end(): void } {
  let pending = '';
  return {
    push(chunk) {
      const parts = (pending + chunk).split(/\r\n|\n|\r/);
      pending = parts.pop() ?? '';
      for (const line of parts) emit(line);
    },
    end() {
      if (pending !== '') emit(pending);
      pending = '';
    },
  };
}
