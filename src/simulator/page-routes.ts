/**
 * Panopticon simulator: browser-facing routes (sign in, sign out, the dashboard page).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { serialize } from 'cookie';
import { SESSION_COOKIE, TOKEN_COOKIE, TOKEN_LIFETIME_SEC } from './auth.js';
import { endLoginOf, noteIdentity, noteUser, requireUser, type SimContext } from './context.js';
import { registerClientAssets } from './client-assets.js';
import { dashboardPage, loginPage } from './pages.js';
import { stompPageConfig } from './stomp-routes.js';
import { handleLogout } from './logout.js';

const MAX_REASON_CHARS = 200;

function firstString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
}

export function registerPageRoutes(app: FastifyInstance, sim: SimContext): void {
  const ctx = sim.contextPath;
  const cookiePath = ctx === '' ? '/' : ctx;

  if (ctx !== '') app.get(ctx, async (_request, reply) => reply.redirect(`${ctx}/`, 302));

  app.get(`${ctx}/login`, async (request, reply) => {
    const reason = firstString((request.query as Record<string, unknown>)['reason'])?.slice(0, MAX_REASON_CHARS);
    return sendHtml(reply, 200, loginPage({ contextPath: ctx, reason }));
  });

  app.post(`${ctx}/login`, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const username = firstString(body['username']) ?? '';
    const password = firstString(body['password']) ?? '';
    const user = sim.auth.checkPassword(username, password);
    if (!user) {
      sim.log.info({ user: username || undefined }, 'simulator: sign-in refused');
      return sendHtml(reply, 401, loginPage({ contextPath: ctx, error: 'Invalid user name or password.' }));
    }
    const { token, sessionId } = await sim.auth.createLogin(user, { withSession: sim.issueSessionCookie });
    noteUser(sim, request, user.username);
    // Spring Security rotates the CSRF token when a user signs in
    sim.csrf?.issueFor(request, reply);
    const cookies = [serialize(TOKEN_COOKIE, token, { path: cookiePath, sameSite: 'lax', maxAge: TOKEN_LIFETIME_SEC })];
    if (sessionId !== undefined) {
      cookies.push(serialize(SESSION_COOKIE, sessionId, { path: cookiePath, httpOnly: true, sameSite: 'lax' }));
    }
    sim.log.info({ user: user.username, licenses: sim.logins.licensesInUse() }, 'simulator: signed in');
    for (const cookie of cookies) reply.header('set-cookie', cookie);
    return reply.code(302).header('location', `${sim.origin}${ctx}/`).send();
  });

  if (sim.logoutStyle === 'rest') {
    // the dashboard's "Sign out" button (the proxy logs out through the REST path)
    app.post(`${ctx}/logout`, async (request, reply) => {
      const identity = await sim.auth.identify(request.headers);
      if (identity) {
        noteIdentity(sim, request, identity);
        endLoginOf(sim, identity);
      }
      const expired = { path: cookiePath, maxAge: 0 };
      return reply
        .code(302)
        .header('set-cookie', [serialize(TOKEN_COOKIE, '', expired), serialize(SESSION_COOKIE, '', { ...expired, httpOnly: true })])
        .header('location', `${ctx}/login?reason=${encodeURIComponent('Signed out')}`)
        .send();
    });
  } else {
    // Spring Security's logout (SIM_LOGOUT=spring) or the fake one: recorded, fails on purpose on demand
    app.post(`${ctx}/logout`, async (request, reply) => handleLogout(sim, request, reply, 'redirect'));
  }

  registerClientAssets(app, ctx);

  app.register(async (scope) => {
    scope.addHook('onRequest', requireUser(sim, 'page'));
    for (const path of [`${ctx}/`, `${ctx}/dashboard`]) {
      scope.get(path, async (request, reply) => {
        const { user } = sim.identityOf.get(request)!;
        // with SIM_CSRF the sign-out form carries the token as Spring's `_csrf` field
        const csrfToken = sim.csrf ? sim.csrf.presented(request) ?? sim.csrf.issueFor(request, reply) : undefined;
        return sendHtml(reply, 200, dashboardPage({
          contextPath: ctx, username: user.username, role: user.role, pollIntervalMs: sim.pollIntervalMs, autoRefreshMs: sim.autoRefreshMs, stomp: stompPageConfig(sim), csrfToken,
        }));
      });
    }
  });
}
