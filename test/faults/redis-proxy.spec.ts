import Redis from 'ioredis';
import { TestRedisServer } from '../support/redis-server';
import { frameEnd, RedisProxy } from './redis-proxy';

/** The network nemeses' proxy does what the scenarios rely on, against a real redis-server. */
describe('fault proxy between a client and Redis', () => {
  let server: TestRedisServer;
  let proxy: RedisProxy;
  let direct: Redis;
  const clients: Redis[] = [];
  const viaProxy = (options: Record<string, unknown> = {}) => {
    const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50, ...options });
    clients.push(client);
    return client;
  };

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

  it('splits RESP frames, nested and incomplete', () => {
    const reply = Buffer.from('*2\r\n$3\r\nfoo\r\n*1\r\n:42\r\n+OK\r\n$5\r\nab');
    const first = frameEnd(reply, 0);
    expect(reply.toString('latin1', 0, first)).toBe('*2\r\n$3\r\nfoo\r\n*1\r\n:42\r\n');
    const second = frameEnd(reply, first);
    expect(reply.toString('latin1', first, second)).toBe('+OK\r\n');
    expect(frameEnd(reply, second)).toBe(-1);
  });

  it('delays the reply to the matching command, and the replies behind it, in order', async () => {
    const client = viaProxy();
    await client.ping();
    const delayed = proxy.delayReply('\r\nslow-key\r\n', 400);
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
    const dropped = proxy.dropReply('\r\nlost-reply\r\n');
    // ioredis resends a command left unanswered by a closed connection: Redis runs it twice.
    await expect(client.incr('lost-reply')).resolves.toBe(2);
    expect(await dropped).toBe(true);
    expect(await direct.get('lost-reply')).toBe('2');
  });

  it('black-holes every connection until healed, then lets the client reconnect', async () => {
    const client = viaProxy({ commandTimeout: 300 });
    await client.ping();
    proxy.blackhole();
    await expect(client.set('in-the-hole', '1')).rejects.toThrow(/timed out/);
    proxy.heal();
    await expect(client.ping()).resolves.toBe('PONG');
  });
});
