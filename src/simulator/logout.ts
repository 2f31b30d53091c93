/**
 * Panopticon simulator: the logout endpoints, in the style SIM_LOGOUT picks (see LogoutStyle).
 * Every call is recorded and obeys the failure switches (fail with a status, hang).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { serialize } from 'cookie';
import { SESSION_COOKIE, TOKEN_COOKIE, presentedKinds } from './auth.js';
import { endLoginOf, noteIdentity, pathOf, type LogoutCall, type SimContext } from './context.js';

/** Status recorded for a logout call nobody is waiting for any more. */
export const ABANDONED_STATUS = 499;

/** How the endpoint answers: REST JSON, or Spring Security's redirect to the login page. */
export type LogoutAnswer = 'json' | 'redirect';

function abandon(request: FastifyRequest, reply: FastifyReply): void {
  reply.hijack();
  request.raw.socket?.destroy();
}

function clientGone(request: FastifyRequest): boolean {
  const socket = request.raw.socket;
  return !socket || socket.destroyed;
}

function expireCookies(sim: SimContext, reply: FastifyReply): FastifyReply {
  const expired = { path: sim.contextPath === '' ? '/' : sim.contextPath, maxAge: 0 };
  return reply.header('set-cookie', [serialize(TOKEN_COOKIE, '', expired), serialize(SESSION_COOKIE, '', { ...expired, httpOnly: true })]);
}

export async function handleLogout(sim: SimContext, request: FastifyRequest, reply: FastifyReply, answer: LogoutAnswer): Promise<FastifyReply | void> {
  const identity = await sim.auth.identify(request.headers);
  noteIdentity(sim, request, identity);
  const call: LogoutCall = sim.logoutCalls.push({
    user: identity?.user.username, path: pathOf(request.url), status: 0, via: identity?.via ?? 'none', presented: presentedKinds(request.headers), atMs: Date.now(),
  });

  const failStatus = sim.failures.takeLogoutFailure();
  if (failStatus !== undefined) {
    call.status = failStatus;
    sim.log.info({ user: call.user, status: failStatus }, 'simulator: logout failed on purpose');
    return reply.code(failStatus).send({ error: 'simulated failure' });
  }
  const callerLeft = new Promise<boolean>((resolve) => reply.raw.once('close', () => resolve(false)));
  const proceed = await Promise.race([sim.failures.waitWhileHung(), callerLeft]);
  if (!proceed || clientGone(request)) {
    call.status = ABANDONED_STATUS;
    return abandon(request, reply);
  }
  // the login may have ended while the call hung
  const current = identity && (await sim.auth.identify(request.headers));
  if (sim.logoutStyle === 'fake') {
    // answers like a logout, ends nothing: the license stays checked out
    call.status = 200;
    sim.log.info({ user: current?.user.username }, 'simulator: fake logout (session kept)');
    return expireCookies(sim, reply).send({ loggedOut: true });
  }
  if (current) endLoginOf(sim, current);
  if (answer === 'redirect') {
    // Spring Security's LogoutFilter: always back to the login page, signed in or not
    call.status = 302;
    return expireCookies(sim, reply).code(302).header('location', `${sim.contextPath}/login?logout`).send();
  }
  if (!current) {
    call.status = 401;
    return reply.code(401).send({ error: 'unauthorized', message: 'Unknown or expired credential' });
  }
  call.status = 200;
  return expireCookies(sim, reply).send({ loggedOut: true });
}
