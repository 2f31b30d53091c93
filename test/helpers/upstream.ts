/**
 * A real upstream for the proxy tests: node:http plus a ws server on 127.0.0.1, random port.
 *
 * HTTP
 *   *  /echo...                any method: {method, path, query, headers, bodyLength, bodySha256}
 *   GET  /download?mb=N[&hold=ID]  N MiB in 64 KiB chunks; with hold, only the first chunk is sent
 *                               until release(ID) is called; ('download-closed', ID, finished)
 *   *  /upload?id=ID            counts the body; emits ('upload-first-chunk', ID) on the first chunk;
 *                               answers {bytes, sha256}
 *   GET  /cookies               three Set-Cookie headers
 *   GET  /redirect/absolute     302 to <upstream origin>/target?x=1%202#frag
 *   GET  /redirect/relative     302 to /target
 *   GET  /redirect/foreign      302 to https://elsewhere.example/x
 *   GET  /gzip                  gzip-compressed text, Content-Encoding: gzip
 *   GET  /etag                  ETag "v1" + Cache-Control; 304 when If-None-Match matches
 *   GET  /slow?ms=N             headers only after N ms
 *   GET  /status/NNN            answers NNN (emits 'status-hit')
 *   GET  /chunked               three chunks, no Content-Length (chunked transfer encoding)
 *   GET  /break                 headers, one chunk, then the connection is destroyed
 * WebSocket
 *   /ws/echo                    echoes every message (binary flag kept); picks sub-protocol
 *                               chat.v2, else chat.v1, else none
 *   /ws/close?code=C&reason=R   closes with C/R right after opening
 *   /ws/refuse                  refuses the upgrade with 401
 *   /ws/headers                 sends the upgrade request's headers as one JSON text message
 *   /ws/hello                   sends "hello" the moment it opens
 *   /ws/flood?mb=N              sends N MiB as 256 KiB binary messages, as fast as it may
 *   /ws/slow?ms=N               completes the handshake only after N ms; emits 'ws-slow-attempt'
 *                               on arrival and 'ws-slow-abandoned' if the connection goes first
 * Every WebSocket close the upstream sees is emitted as ('ws-close', {path, code, reason}).
 */
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { WebSocketServer, type WebSocket } from 'ws';

export const CHUNK_BYTES = 64 * 1024;
export const GZIP_TEXT = 'compressed hello '.repeat(200);

export interface WsCloseSeen { path: string; code: number; reason: string }

export interface TestUpstream {
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly port: number;
  readonly events: EventEmitter;
  /** server-side sockets of open WebSocket connections, by path */
  readonly wsSockets: Map<string, WebSocket>;
  release(holdId: string): void;
  close(): Promise<void>;
}

function chunkOf(index: number): Buffer {
  return Buffer.alloc(CHUNK_BYTES, index % 251);
}

export async function startUpstream(): Promise<TestUpstream> {
  const events = new EventEmitter();
  const holds = new Map<string, () => void>();
  const wsSockets = new Map<string, WebSocket>();
  let origin = '';

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const path = url.pathname;
    const rawQuery = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?')) : '';

    if (path.startsWith('/echo')) {
      const hash = createHash('sha256');
      let bodyLength = 0;
      req.on('data', (c: Buffer) => { bodyLength += c.length; hash.update(c); });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, path, query: rawQuery, headers: req.headers, bodyLength, bodySha256: hash.digest('hex') }));
      });
      return;
    }
    if (path === '/download') {
      const chunks = Math.round(Number(url.searchParams.get('mb') ?? '1') * 1024 * 1024 / CHUNK_BYTES);
      const holdId = url.searchParams.get('hold');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunks * CHUNK_BYTES) });
      let i = 0;
      const pump = () => {
        while (i < chunks) {
          const ok = res.write(chunkOf(i++));
          if (!ok) { res.once('drain', pump); return; }
        }
        res.end();
      };
      if (holdId) {
        res.on('close', () => events.emit('download-closed', holdId, res.writableFinished));
        res.write(chunkOf(i++));
        holds.set(holdId, pump);
        events.emit('download-holding', holdId);
      } else {
        pump();
      }
      return;
    }
    if (path === '/upload') {
      const id = url.searchParams.get('id') ?? '';
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        if (bytes === 0) events.emit('upload-first-chunk', id);
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
      });
      return;
    }
    if (path === '/cookies') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure; SameSite=Lax']);
      res.end('ok');
      return;
    }
    if (path.startsWith('/redirect/')) {
      const kind = path.slice('/redirect/'.length);
      const to = kind === 'absolute' ? `${origin}/target?x=1%202#frag` : kind === 'relative' ? '/target' : 'https://elsewhere.example/x';
      res.writeHead(302, { location: to });
      res.end();
      return;
    }
    if (path === '/gzip') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      res.end(gzipSync(GZIP_TEXT));
      return;
    }
    if (path === '/etag') {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=60', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' });
      res.end('tagged');
      return;
    }
    if (path === '/slow') {
      const timer = setTimeout(() => res.end('late'), Number(url.searchParams.get('ms') ?? '1000'));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (path.startsWith('/status/')) {
      res.statusCode = Number(path.slice('/status/'.length));
      events.emit('status-hit', res.statusCode);
      res.end();
      return;
    }
    if (path === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('one,');
      setTimeout(() => { res.write('two,'); res.end('three'); }, 20);
      return;
    }
    if (path === '/break') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(10 * CHUNK_BYTES) });
      res.write(chunkOf(0), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    res.statusCode = 404;
    res.end('no such test endpoint');
  });

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('chat.v2') ? 'chat.v2' : offered.has('chat.v1') ? 'chat.v1' : false),
  });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    if (url.pathname === '/ws/slow') {
      // answers the handshake only after ?ms=N; the attempt is reported as ('ws-slow-attempt')
      events.emit('ws-slow-attempt');
      const timer = setTimeout(() => {
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          wsSockets.set('/ws/slow', ws);
          ws.on('error', () => { /* abrupt closes are expected */ });
          ws.on('close', (code, reason) => events.emit('ws-close', { path: '/ws/slow', code, reason: reason.toString() }));
        });
      }, Number(url.searchParams.get('ms') ?? '500'));
      socket.on('close', () => {
        clearTimeout(timer);
        if (!wsSockets.has('/ws/slow')) events.emit('ws-slow-abandoned');
      });
      return;
    }
    if (url.pathname === '/ws/refuse') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const path = url.pathname;
      wsSockets.set(path, ws);
      ws.on('error', () => { /* tests close sockets abruptly */ });
      ws.on('close', (code, reason) => {
        if (wsSockets.get(path) === ws) wsSockets.delete(path);
        events.emit('ws-close', { path, code, reason: reason.toString() } satisfies WsCloseSeen);
      });
      if (path === '/ws/echo') {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      } else if (path === '/ws/close') {
        ws.close(Number(url.searchParams.get('code') ?? '1000'), url.searchParams.get('reason') ?? '');
      } else if (path === '/ws/headers') {
        ws.send(JSON.stringify({ headers: req.headers, url: req.url }));
      } else if (path === '/ws/hello') {
        ws.send('hello');
      } else if (path === '/ws/flood') {
        const messageBytes = 256 * 1024;
        let left = Math.round(Number(url.searchParams.get('mb') ?? '8') * 1024 * 1024 / messageBytes);
        let seq = 0;
        const pump = () => {
          while (left > 0 && ws.readyState === ws.OPEN) {
            const message = Buffer.alloc(messageBytes, seq++ % 256);
            left--;
            if (ws.bufferedAmount > 4 * messageBytes) {
              ws.send(message, () => pump());
              return;
            }
            ws.send(message);
          }
        };
        pump();
      }
    });
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
    port,
    events,
    wsSockets,
    release(holdId) {
      const pump = holds.get(holdId);
      holds.delete(holdId);
      pump?.();
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
