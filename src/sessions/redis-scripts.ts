/**
 * The Lua scripts that make the shared session records safe with several writers. Each touches
 * one user's keys only (`<prefix>u:{user}` and `<prefix>u:{user}:c`, one Cluster slot thanks to
 * the hash tag), so each runs atomically on one Redis node.
 *
 * Record hash fields: first (first seen), idle (idle since: the latest counted activity), last
 * (that request, JSON), out (logged out at), warn / logout (idle period whose warning / logout
 * was claimed), rto / rcut (the latest retraction: idle back to rto, covering counted activity
 * up to rcut). Every time field only moves forward, so writes from several replicas, or late
 * writes after an outage, merge to "latest activity wins" — except for a retraction (RETRACT).
 *
 * Retraction (issue 10's timers, shared): a replica that recognises a user's requests as a timer
 * says "the idle period runs from `to` (my last request that was not the timer's); what I counted
 * up to `cut` (the latest activity I knew then) was the timer's". In Redis that is a set-to, not a
 * max: idle goes back to the highest `to` any replica retracted to (rto, so a real click that
 * another replica saw and retracted to is never lost to a lower one), and warn claims above it go
 * (the earlier period must be warned). Forward values inside the window (rto, rcut] written later
 * are stale — timer requests another replica counted before it heard of the retraction — and lose.
 * A value above rcut is activity newer than anything the retraction covered and wins as always,
 * from any replica. The other replicas recognise the timer too (each sees it at a steady, longer
 * interval) and retract to their own last real request; the highest of those wins.
 */
import type { Cluster, Redis } from 'ioredis';

/** KEYS: record, credentials. ARGV: first, idle, last, out, warn, logout, resetCredentials, ttlMs, then fingerprint/sealed pairs. */
const TOUCH = `
local h, c = KEYS[1], KEYS[2]
local function num(f) local v = redis.call('HGET', h, f) if v then return tonumber(v) end return nil end
local first = num('first')
if not first or tonumber(ARGV[1]) < first then redis.call('HSET', h, 'first', ARGV[1]) end
local rto, rcut = num('rto') or 0, num('rcut') or 0
local function stale(v) return v > rto and v <= rcut end
local idle = num('idle')
if not idle or (tonumber(ARGV[2]) > idle and not stale(tonumber(ARGV[2]))) then
  redis.call('HSET', h, 'idle', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', h, 'last', ARGV[3]) end
end
local fields = {'out', 'warn', 'logout'}
for i = 1, 3 do
  local v = ARGV[3 + i]
  if v ~= '' then
    local old = num(fields[i])
    if (not old or tonumber(v) > old) and (i == 1 or not stale(tonumber(v))) then redis.call('HSET', h, fields[i], v) end
  end
end
if ARGV[7] == '1' then redis.call('DEL', c) end
for i = 9, #ARGV, 2 do redis.call('HSET', c, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', h, ARGV[8])
if redis.call('EXISTS', c) == 1 then redis.call('PEXPIRE', c, ARGV[8]) end
return 1
`;

/**
 * KEYS: record, credentials. ARGV: action (warn|logout), period, force (1|0), nowMs, replica.
 * Returns {'won', period, fp1, sealed1, ...} (credentials only for a logout), {'moved', idle}
 * when the shared record shows later activity, or {'taken', claimedPeriod, out, claimant}.
 * The claimant (`<action>By`) is kept so a replica whose answer was lost (a timeout on a busy
 * connection while Redis did run the script) recognises its own claim when it asks again.
 */
const CLAIM = `
local h = KEYS[1]
local period = tonumber(ARGV[2])
local idle = tonumber(redis.call('HGET', h, 'idle') or '0')
if idle > period then
  if ARGV[3] ~= '1' then return {'moved', tostring(idle)} end
  period = idle
end
local field = ARGV[1]
local cur = tonumber(redis.call('HGET', h, field) or '-1')
if cur >= period then
  local by = redis.call('HGET', h, field .. 'By') or ''
  if cur == period and by == ARGV[5] and field == 'logout' then
    local again = {'won', tostring(period)}
    local creds = redis.call('HGETALL', KEYS[2])
    for i = 1, #creds do again[#again + 1] = creds[i] end
    return again
  end
  if cur == period and by == ARGV[5] then return {'won', tostring(period)} end
  return {'taken', tostring(cur), redis.call('HGET', h, 'out') or '', by}
end
redis.call('HSET', h, field, tostring(period), field .. 'By', ARGV[5])
if idle < period then redis.call('HSET', h, 'idle', tostring(period)) end
if field ~= 'logout' then return {'won', tostring(period)} end
redis.call('HSET', h, 'out', ARGV[4])
local out = {'won', tostring(period)}
local creds = redis.call('HGETALL', KEYS[2])
for i = 1, #creds do out[#out + 1] = creds[i] end
return out
`;

/**
 * KEYS: record. ARGV: to, cut, last (JSON of the request at `to`), ttlMs. The set-to described
 * above. Returns {'set', idle} (the idle start now shared), {'kept', idle} when the record holds
 * activity newer than `cut`, or {'out', out} when the user was logged out (left alone).
 */
const RETRACT = `
local h = KEYS[1]
local function num(f) local v = redis.call('HGET', h, f) if v then return tonumber(v) end return nil end
local to, cut = tonumber(ARGV[1]), tonumber(ARGV[2])
local idle, out = num('idle'), num('out')
if out and idle and out >= idle then return {'out', tostring(out)} end
local rto = math.max(num('rto') or 0, to)
redis.call('HSET', h, 'rto', tostring(rto), 'rcut', tostring(math.max(num('rcut') or 0, cut)))
redis.call('PEXPIRE', h, ARGV[4])
if idle and idle > cut then return {'kept', tostring(idle)} end
redis.call('HSET', h, 'idle', tostring(rto))
if rto == to and ARGV[3] ~= '' then redis.call('HSET', h, 'last', ARGV[3]) end
local warn = num('warn')
if warn and warn > rto then redis.call('HDEL', h, 'warn', 'warnBy') end
return {'set', tostring(rto)}
`;

/** KEYS: record, credentials. Deletes the user's keys only while the record is logged out. */
const FORGET = `
local out = tonumber(redis.call('HGET', KEYS[1], 'out') or '-1')
local idle = tonumber(redis.call('HGET', KEYS[1], 'idle') or '0')
if out >= 0 and out >= idle then redis.call('DEL', KEYS[1], KEYS[2]) return 1 end
return 0
`;

/** KEYS: lease. ARGV: replica, ttlMs. Renews the lease if this replica holds it: 1, else 0. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
`;

/** KEYS: lease, job. ARGV: replica. Deletes a finished job if this replica holds its lease (or nobody does). */
const FINISH = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

export interface SessionScripts {
  stpTouch(record: string, creds: string, ...args: string[]): Promise<number>;
  stpClaim(record: string, creds: string, action: string, period: string, force: string, nowMs: string, replica: string): Promise<string[]>;
  stpForget(record: string, creds: string): Promise<number>;
  stpRetract(record: string, toMs: string, cutMs: string, last: string, ttlMs: string): Promise<string[]>;
  stpRenew(lease: string, replica: string, ttlMs: string): Promise<number>;
  stpFinish(lease: string, job: string, replica: string): Promise<number>;
}

export type ScriptedClient = (Redis | Cluster) & SessionScripts;

/** Defines the scripts on a client (ioredis sends EVALSHA, and the script itself when Redis lost it). */
export function withScripts(client: Redis | Cluster): ScriptedClient {
  const c = client as ScriptedClient;
  if (typeof c.stpTouch === 'function') return c;
  client.defineCommand('stpTouch', { numberOfKeys: 2, lua: TOUCH });
  client.defineCommand('stpClaim', { numberOfKeys: 2, lua: CLAIM });
  client.defineCommand('stpForget', { numberOfKeys: 2, lua: FORGET });
  client.defineCommand('stpRetract', { numberOfKeys: 1, lua: RETRACT });
  client.defineCommand('stpRenew', { numberOfKeys: 1, lua: RENEW });
  client.defineCommand('stpFinish', { numberOfKeys: 2, lua: FINISH });
  return c;
}
