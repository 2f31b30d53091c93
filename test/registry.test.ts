import t from 'tap';
import type { WebSocket } from 'ws';
import { SocketRegistry, type RegisteredSocket } from '../src/notifications/registry.js';

const fakeSocket = () => ({}) as WebSocket;

function entry(path: string, user: string | undefined): Omit<RegisteredSocket, 'id'> {
  return { socket: fakeSocket(), path, headers: { cookie: 'x' }, user, openedAtMs: Date.now() };
}

t.test('add gives ids and indexes by user', async (t) => {
  const reg = new SocketRegistry();
  const a = reg.add(entry('/panopticon/ws/a', 'alice'));
  const b = reg.add(entry('/panopticon/ws/b', 'alice'));
  const c = reg.add(entry('/other', 'bob'));
  const anon = reg.add(entry('/panopticon/ws/a', undefined));
  t.not(a.id, b.id);
  t.equal(reg.size, 4);
  t.same(reg.byUser('alice').map((r) => r.id).sort(), [a.id, b.id].sort());
  t.same(reg.byUser('bob'), [c]);
  t.same(reg.byUser('nobody'), []);
  t.equal(reg.countByUser('alice'), 2);
  t.same([...reg.all()].map((r) => r.id), [a.id, b.id, c.id, anon.id]);
});

t.test('byUser filters by path', async (t) => {
  const reg = new SocketRegistry();
  const a = reg.add(entry('/panopticon/ws/a', 'alice'));
  reg.add(entry('/elsewhere', 'alice'));
  t.same(reg.byUser('alice', (p) => p.startsWith('/panopticon/')), [a]);
  t.same(reg.byUser('alice', () => false), []);
});

t.test('setUser moves a socket between users, or makes it anonymous', async (t) => {
  const reg = new SocketRegistry();
  const s = reg.add(entry('/ws', undefined));
  t.equal(reg.countByUser('alice'), 0);
  reg.setUser(s, 'alice');
  t.same(reg.byUser('alice'), [s]);
  reg.setUser(s, 'alice');
  t.equal(reg.countByUser('alice'), 1, 'setting the same user twice is harmless');
  reg.setUser(s, 'bob');
  t.same(reg.byUser('alice'), []);
  t.same(reg.byUser('bob'), [s]);
  reg.setUser(s, undefined);
  t.same(reg.byUser('bob'), []);
  t.equal(reg.size, 1, 'still registered');
});

t.test('remove forgets the socket everywhere, twice is harmless', async (t) => {
  const reg = new SocketRegistry();
  const a = reg.add(entry('/ws', 'alice'));
  const b = reg.add(entry('/ws', 'alice'));
  reg.remove(a);
  t.same(reg.byUser('alice'), [b]);
  reg.remove(a);
  t.equal(reg.size, 1);
  reg.remove(b);
  t.equal(reg.size, 0);
  t.equal(reg.countByUser('alice'), 0);
  t.same(reg.byUser('alice'), []);
});
