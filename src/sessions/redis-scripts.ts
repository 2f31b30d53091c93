/**
 * The Lua scripts that make the shared session records safe with several writers. Each touches
 * one user's keys only (`<prefix>u:{user}` and `<prefix>u:{user}:c`, one Cluster slot thanks to
 * the hash tag), so each runs atomically on one Redis node.
 *
 * Record hash fields: first (first seen), idle (idle since: the latest counted activity), last
 * (that request, JSON), out (logged out at), warn / logout (idle period whose warning / logout
 * was claimed). Every time field only moves forward, so writes from several replicas, or late
 * writes after an outage, merge to "latest activity wins".
 */
import type { Cluster, Redis } from 'ioredis';

/** KEYS: record, credentials. ARGV: first, idle, last, out, warn, logout, resetCredentials, ttlMs, then fingerprint/sealed pairs. */
const TOUCH = `
local h, c = KEYS[1], KEYS[2]
local function num(f) local v = redis.call('HGET', h, f) if v then return tonumber(v) end return nil end
local first = num('first')
if not first or tonumber(ARGV[1]) < first then redis.call('HSET', h, 'first', ARGV[1]) end
local idle = num('idle')
if not idle or tonumber(ARGV[2]) > idle then
  redis.call('HSET', h, 'idle', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', h, 'last', ARGV[3]) end
end
local fields = {'out', 'warn', 'logout'}
for i = 1, 3 do
  local v = ARGV[3 + i]
  if v ~= '' then
    local old = num(fields[i])
    if not old or tonumber(v) > old then redis.call('HSET', h, fields[i], v) end
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
  client.defineCommand('stpRenew', { numberOfKeys: 1, lua: RENEW });
  client.defineCommand('stpFinish', { numberOfKeys: 2, lua: FINISH });
  return c;
}
