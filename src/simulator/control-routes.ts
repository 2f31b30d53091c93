/**
 * Panopticon simulator: /__simulator/* control endpoints for demos and black-box tests.
 * They are never delayed, never "down", and need no credentials (the simulator is a test tool).
 */
import type { FastifyInstance } from 'fastify';
import type { SimContext } from './context.js';

export const CONTROL_PREFIX = '/__simulator';

/** Recent requests listed in the state answer. */
const STATE_REQUESTS_SHOWN = 200;

export interface FailuresBody {
  failLogout?: number;
  status?: number;
  hangLogout?: boolean;
  delayMs?: number;
  down?: boolean;
  downMs?: number;
  reset?: boolean;
}

const FAILURE_FIELDS: Record<keyof FailuresBody, 'number' | 'boolean'> = {
  failLogout: 'number', status: 'number', hangLogout: 'boolean', delayMs: 'number', down: 'boolean', downMs: 'number', reset: 'boolean',
};

/** The body as FailuresBody, or a message saying what is wrong (unknown keys are errors: typos must show). */
export function checkFailuresBody(body: unknown): FailuresBody | string {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) return 'expected a JSON object';
  for (const [key, value] of Object.entries(body)) {
    const type = FAILURE_FIELDS[key as keyof FailuresBody];
    if (!type) return `unknown field ${JSON.stringify(key)}; known: ${Object.keys(FAILURE_FIELDS).join(', ')}`;
    if (typeof value !== type) return `${key} must be a ${type}`;
  }
  return body as FailuresBody;
}

export function stateOf(sim: SimContext) {
  return {
    licenses: { inUse: sim.logins.licensesInUse(), total: sim.logins.totalUnits() },
    logins: sim.logins.summaries(),
    sockets: sim.sockets.counts(),
    failures: sim.failures.snapshot(),
    logoutCalls: sim.logoutCalls.items,
    requests: sim.requests.items.slice(-STATE_REQUESTS_SHOWN),
  };
}

export function registerControlRoutes(app: FastifyInstance, sim: SimContext): void {
  app.get(`${CONTROL_PREFIX}/state`, async () => stateOf(sim));

  app.post(`${CONTROL_PREFIX}/failures`, async (request, reply) => {
    const body = checkFailuresBody(request.body);
    if (typeof body === 'string') return reply.code(400).send({ error: 'bad request', message: body });
    const f = sim.failures;
    try {
      if (body.reset) f.reset();
      if (body.failLogout !== undefined) f.failLogout(body.failLogout, body.status);
      if (body.hangLogout !== undefined) f.hangLogout(body.hangLogout);
      if (body.delayMs !== undefined) f.setDelayMs(body.delayMs);
      if (body.down !== undefined) f.setDown(body.down, body.down ? body.downMs : undefined);
    } catch (err) {
      return reply.code(400).send({ error: 'bad request', message: (err as Error).message });
    }
    sim.log.info({ failures: f.snapshot() }, 'simulator: failure switches changed');
    return f.snapshot();
  });

  // back to a fresh simulator: no failures, no logins, no sockets, empty records
  app.post(`${CONTROL_PREFIX}/reset`, async () => {
    sim.failures.reset();
    sim.logins.clear();
    sim.sockets.terminateAll();
    sim.logoutCalls.clear();
    sim.requests.clear();
    return { reset: true };
  });
}
