/**
 * The paths the proxy answers itself on its main listener (the timeout reset service, health),
 * learnt from Fastify's onRoute hook as they are registered, so the direct forwarder knows
 * which requests to leave to Fastify. The proxy's own catch-alls ('/' and '/*') are not "own".
 */
export class OwnRoutes {
  private readonly exact = new Set<string>();
  /** static beginnings of routes with parameters or wildcards */
  private readonly prefixes: string[] = [];

  /** for app.addHook('onRoute', ...) */
  readonly onRoute = (route: { url: string }): void => {
    const url = route.url;
    if (url === '/' || url === '/*') return;
    const dynamic = url.search(/[:*]/);
    if (dynamic === -1) this.exact.add(url);
    else this.prefixes.push(url.slice(0, dynamic));
  };

  /** `path`: the request target before any `?` */
  has(path: string): boolean {
    if (this.exact.has(path)) return true;
    for (const prefix of this.prefixes) if (path.startsWith(prefix)) return true;
    return false;
  }
}
