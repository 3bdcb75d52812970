import { linePrefixer } from '../../lib/runner/logs.js';

describe('log multiplexing', () => {
  test('each complete line gets its pod prefix, even when chunks split lines', async () => {
    const lines: string[] = [];
    const out = linePrefixer('sandstore-1 | ', (l) => lines.push(l));
    out.write('Became Lea');
    out.write('der term=3\nheartbeat\nparti');
    await new Promise<void>((resolve) => out.end('al', resolve));
    expect(lines).toEqual(['sandstore-1 | Became Leader term=3', 'sandstore-1 | heartbeat', 'sandstore-1 | partial']);
  });
});
