// Requests through the containerised proxy: sign in as alice, load the dashboard with the
// credential, and see the session on the admin API.  usage: node requests.mjs PROXY ADMIN TOKEN
const [proxy, admin, token] = process.argv.slice(2);
const fail = (msg) => { console.error(`container test: FAILED: ${msg}`); process.exit(1); };

const login = await fetch(`${proxy}/panopticon/login`, {
  method: 'POST',
  redirect: 'manual',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ username: 'alice', password: 'alice' }),
});
if (login.status !== 302) fail(`sign-in through the proxy answered ${login.status}`);
const cookie = login.headers.getSetCookie().map((c) => c.split(';', 1)[0]).join('; ');
if (!cookie.includes('=')) fail('sign-in set no cookie');

const page = await fetch(`${proxy}/panopticon/`, { headers: { cookie } });
const html = await page.text();
if (page.status !== 200) fail(`the dashboard through the proxy answered ${page.status}`);
console.log(`container test:   GET /panopticon/ through the proxy: ${page.status}, ${html.length} bytes`);

const sessions = await fetch(`${admin}/admin/sessions`, { headers: { authorization: `Bearer ${token}` } });
const body = await sessions.json();
if (!body.sessions?.some((s) => s.user === 'alice')) fail(`the proxy does not track alice: ${JSON.stringify(body).slice(0, 300)}`);
console.log('container test:   the admin API tracks alice');
