import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  handoverScript,
  heldConnectionScript,
  HANDOVER_SCRIPT_ENV,
  releaseGateScript,
  type LeaderHandoverSettings,
} from './leader-handover.js';

// The scripts run in a real busybox shell with busybox's own nc, as in the image, started as the
// kubelet starts a pod's containers: the handover container and its postStart hook, and Sand
// Store's container only once that hook has returned. Sand Store is an HTTP/2 server of Node's that
// says when it listens; the leader is Node's HTTP/2 client.

/** Sand Store's stand-in: an h2c server on PORT that answers every request with its name. */
const FAKE_SANDSTORE = `
import http2 from 'node:http2';
const server = http2.createServer((_req, res) => res.end('sandstore'));
server.listen(Number(process.env.PORT), () => process.stdout.write(\`sandstore listening \${Date.now()}\\n\`));
process.on('SIGTERM', () => process.exit(0));
`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Started {
  readonly handover: ChildProcessWithoutNullStreams;
  sandstore?: ChildProcessWithoutNullStreams;
  readonly settings: LeaderHandoverSettings;
  /** What the containers printed, in the order it came. */
  stdout: string;
  /** Emitted output, for `printed`. */
  readonly listeners: Set<() => void>;
}

/** The pod's containers, in the kubelet's order: the handover, its postStart, then Sand Store. */
async function startPod(opts: { withState: boolean; holdSeconds: number }): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'handover-'));
  if (opts.withState) writeFileSync(join(dir, 'raft_stable.json'), '{}');
  writeFileSync(join(dir, 'fake.mjs'), FAKE_SANDSTORE);
  const settings: LeaderHandoverSettings = {
    port: await freePort(),
    dataDir: dir,
    scratchDir: dir,
    holdSeconds: opts.holdSeconds,
    listenSeconds: 10,
  };
  const env = { PATH: `/usr/bin:/bin:${process.env.PATH}`, PORT: String(settings.port) };
  const handover = spawn('busybox', ['sh', '-c', handoverScript(settings)], {
    env: { ...env, [HANDOVER_SCRIPT_ENV]: heldConnectionScript(settings) },
  });
  const started: Started = { handover, settings, stdout: '', listeners: new Set() };
  const collect = (d: Buffer) => {
    started.stdout += d.toString();
    for (const l of started.listeners) l();
  };
  handover.stdout.on('data', collect);
  const postStart = spawn('busybox', ['sh', '-c', releaseGateScript(settings)], { env });
  postStart.on('exit', () => {
    const sandstore = spawn(process.execPath, [join(dir, 'fake.mjs')], { env });
    sandstore.stdout.on('data', collect);
    started.sandstore = sandstore;
  });
  return started;
}

async function stop(s: Started): Promise<void> {
  for (const p of [s.handover, s.sandstore]) {
    if (!p || p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((resolve) => p.on('exit', resolve));
    p.kill('SIGTERM');
    await exited;
  }
}

/** Resolves once the containers' output holds `text` (checked at each chunk), or rejects after `ms`. */
async function printed(s: Started, text: string, ms = 10_000): Promise<void> {
  if (s.stdout.includes(text)) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}" in: ${s.stdout}`)), ms);
    const onData = () => {
      if (!s.stdout.includes(text)) return;
      clearTimeout(timer);
      s.listeners.delete(onData);
      resolve();
    };
    s.listeners.add(onData);
  });
}

/** A connection that retries until something accepts it, as gRPC's channel does. */
async function dial(port: number): Promise<ClientHttp2Session> {
  for (;;) {
    const session = connect(`http://127.0.0.1:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      session.once('remoteSettings', () => resolve(true));
      session.once('error', () => resolve(false));
    });
    if (ok) return session;
    session.destroy();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends a request whose body carries a message type, as Sand Store's MessageRequest does; errors ignored. */
function call(session: ClientHttp2Session, type: string): Promise<void> {
  return new Promise((resolve) => {
    const req = session.request({ ':path': '/communication.MessageService/SendMessage', ':method': 'POST' });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end(`\u0012\u0013${type}`);
  });
}

async function get(session: ClientHttp2Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => resolve(body));
    req.on('error', reject);
    req.end();
  });
}

describe('leader handover, in busybox', () => {
  test("a member with Raft state holds the first peer's connection and hands it over once Sand Store listens", async () => {
    const s = await startPod({ withState: true, holdSeconds: 8 });
    try {
      // The "leader": its connection is made ready by the holder's SETTINGS, before Sand Store runs.
      const leader = await dial(s.settings.port);
      expect(s.stdout).not.toContain('sandstore listening');
      const goaway = new Promise<{ code: number; lastStreamID: number; at: number }>((resolve) =>
        leader.once('goaway', (code: number, lastStreamID: number) => resolve({ code, lastStreamID, at: Date.now() })),
      );
      // Its heartbeat, sent once the connection is ready, is what the holder waits for.
      void call(leader, 'raft_append_entries');
      const away = await goaway;
      await printed(s, 'sandstore listening');
      // The GOAWAY comes only after Sand Store listens, names no stream processed, and is no error.
      const listened = Number(/sandstore listening (\S+)/.exec(s.stdout)?.[1]);
      expect(away).toMatchObject({ code: 0, lastStreamID: 0 });
      expect(away.at).toBeGreaterThanOrEqual(Math.floor(listened));
      expect(s.stdout).toContain("leader handover: a peer's connection is held until Sand Store listens");
      leader.destroy();
      // The leader's next connection reaches Sand Store itself.
      const again = await dial(s.settings.port);
      expect(await get(again)).toBe('sandstore');
      again.destroy();
    } finally {
      await stop(s);
    }
  });

  test("a client's request is not held: its connection is closed and Sand Store waits for a peer", async () => {
    const s = await startPod({ withState: true, holdSeconds: 8 });
    try {
      const client = await dial(s.settings.port);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      void call(client, 'posix_read');
      await closed;
      expect(s.stdout).not.toContain('sandstore listening');
      // A peer's call, on the next connection, is held and handed over.
      const peer = await dial(s.settings.port);
      const away = new Promise<number>((resolve) => peer.once('goaway', (code: number) => resolve(code)));
      void call(peer, 'raft_request_vote');
      expect(await away).toBe(0);
      expect(s.stdout).toContain("leader handover: a peer's connection is held until Sand Store listens");
      peer.destroy();
    } finally {
      await stop(s);
    }
  });

  test('a member without Raft state (a fresh deploy) starts Sand Store at once', async () => {
    const started = performance.now();
    const s = await startPod({ withState: false, holdSeconds: 8 });
    try {
      await printed(s, 'sandstore listening');
      expect(performance.now() - started).toBeLessThan(3000);
      expect(s.stdout).not.toContain('leader handover');
    } finally {
      await stop(s);
    }
  });

  test('with Raft state and no peer calling, Sand Store starts once the hold runs out', async () => {
    const started = performance.now();
    const s = await startPod({ withState: true, holdSeconds: 1 });
    try {
      await printed(s, 'sandstore listening');
      expect(s.stdout).toContain('leader handover: no peer called within 1 s');
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      await stop(s);
    }
  });
});
