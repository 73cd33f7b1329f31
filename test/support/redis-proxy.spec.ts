import Redis from 'ioredis';
import { TestRedisServer } from './redis-server';
import { parseResp, RedisProxy } from './redis-proxy';

/** The test proxy does what the specs and the network nemeses rely on, against a real redis-server. */
describe('test proxy between a client and Redis', () => {
  let server: TestRedisServer;
  let proxy: RedisProxy;
  let direct: Redis;
  const clients: Redis[] = [];
  const viaProxy = (options: Record<string, unknown> = {}) => {
    const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50, ...options });
    clients.push(client);
    return client;
  };
  /** A command on `key` (its words include it). */
  const on = (key: string) => (command: string[]) => command.includes(key);

  beforeAll(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    direct = server.client();
  });
  beforeEach(async () => {
    proxy = await RedisProxy.start({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.disconnect());
    await proxy.close();
  });
  afterAll(async () => {
    direct.disconnect();
    await server.stop();
  });

  it('splits RESP values, nested and incomplete', () => {
    const reply = Buffer.from('*2\r\n$3\r\nfoo\r\n*1\r\n:42\r\n+OK\r\n$5\r\nab');
    const first = parseResp(reply, 0)!;
    expect(first.value).toEqual(['foo', [42]]);
    expect(reply.toString('latin1', 0, first.end)).toBe('*2\r\n$3\r\nfoo\r\n*1\r\n:42\r\n');
    const second = parseResp(reply, first.end)!;
    expect(second.value).toBe('OK');
    expect(parseResp(reply, second.end)).toBeNull();
  });

  it('delays the reply to the matching command, and the replies behind it, in order', async () => {
    const client = viaProxy();
    await client.ping();
    const delayed = proxy.delayReply(on('slow-key'), 400);
    const started = Date.now();
    const answers: string[] = [];
    await Promise.all([
      client.set('slow-key', '1').then(() => answers.push('set')),
      client.get('other').then(() => answers.push('get')),
    ]);
    expect(await delayed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(answers).toEqual(['set', 'get']);
    // The command ran in Redis at once; only its reply was late.
    expect(await direct.get('slow-key')).toBe('1');
  });

  it('drops the reply to the matching command with its connection, after Redis ran it', async () => {
    const client = viaProxy();
    await client.ping();
    const dropped = proxy.dropReply(on('lost-reply'));
    // ioredis resends a command left unanswered by a closed connection: Redis runs it twice.
    await expect(client.incr('lost-reply')).resolves.toBe(2);
    expect(await dropped).toBe(true);
    expect(await direct.get('lost-reply')).toBe('2');
  });

  it('tells a fault that no command took that it was disarmed', async () => {
    const client = viaProxy();
    const dropped = proxy.dropReply(on('never-sent'));
    proxy.disarm();
    expect(await dropped).toBe(false);
    // Disarmed means forgotten: the command passes untouched.
    await expect(client.incr('never-sent')).resolves.toBe(1);
  });

  it('resolves onNextReply with the command seen, and refuses it with an error without running it', async () => {
    const client = viaProxy();
    const seen = proxy.onNextReply({ match: on('refused-key'), fault: { refuse: 'ERR refused by the test proxy' } });
    await expect(client.set('refused-key', '1')).rejects.toThrow('refused by the test proxy');
    expect((await seen).map((word) => word.toLowerCase())).toEqual(['set', 'refused-key', '1']);
    expect(await direct.exists('refused-key')).toBe(0);
    await expect(client.ping()).resolves.toBe('PONG');
  });

  it('delays a command on its way: it runs late', async () => {
    const client = viaProxy();
    await client.ping();
    void proxy.onNextReply({ match: on('late-command'), fault: { delayCommandMs: 400 } });
    const setting = client.set('late-command', '1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await direct.exists('late-command')).toBe(0);
    await setting;
    expect(await direct.get('late-command')).toBe('1');
  });

  it('holds what clients send until released', async () => {
    const client = viaProxy();
    await client.ping();
    proxy.hold();
    const setting = client.set('held-key', '1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await direct.exists('held-key')).toBe(0);
    proxy.release();
    await setting;
    expect(await direct.get('held-key')).toBe('1');
  });

  it('black-holes every connection until healed, then lets the client reconnect', async () => {
    const client = viaProxy({ commandTimeout: 300 });
    await client.ping();
    proxy.blackhole();
    await expect(client.set('in-the-hole', '1')).rejects.toThrow(/timed out/);
    expect(await direct.exists('in-the-hole')).toBe(0);
    proxy.heal();
    await expect(client.ping()).resolves.toBe('PONG');
  });
});
