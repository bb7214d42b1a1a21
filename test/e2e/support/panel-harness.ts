// Serves the real panel page (panelHtml: same CSP, same bundle) on 127.0.0.1 with a stand-in for
// the `acquireVsCodeApi` bridge, so the webview can be rendered and driven in headless Chromium
// without VS Code. The stand-in records what the panel posts and keeps setState in sessionStorage,
// which is how a reload restores the panel, as in VS Code.
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeNonce, panelHtml } from '../../../src/extension/panel-html';
import { distDir } from './env';

export type Theme = 'dark' | 'light' | 'high-contrast';
const BODY_CLASS: Record<Theme, string> = { dark: 'vscode-dark', light: 'vscode-light', 'high-contrast': 'vscode-high-contrast' };

export interface Harness {
  url(theme?: Theme): string;
  close(): Promise<void>;
}

function bridgeScript(theme: Theme): string {
  return `
document.body.className = ${JSON.stringify(BODY_CLASS[theme])};
window.__posted = [];
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))),
  getState: () => JSON.parse(sessionStorage.getItem('panel-state') || 'null'),
  setState: (s) => sessionStorage.setItem('panel-state', JSON.stringify(s)),
});`;
}

export async function startPanelHarness(): Promise<Harness> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const origin = `http://${req.headers.host}`;
    const send = (type: string, body: string | Buffer) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if (url.pathname === '/') {
        const theme = (url.searchParams.get('theme') as Theme) ?? 'dark';
        const nonce = makeNonce();
        let html = panelHtml({ cspSource: origin, nonce, scriptUri: `${origin}/dist/webview.js`, styleUri: `${origin}/dist/webview.css` });
        html = html.replace('</head>', `<link rel="stylesheet" href="${origin}/theme/${theme}.css">\n</head>`);
        html = html.replace('<div id="root">', `<script nonce="${nonce}" src="${origin}/bridge.js?theme=${theme}"></script>\n<div id="root">`);
        return send('text/html; charset=utf-8', html);
      }
      if (url.pathname === '/bridge.js') return send('text/javascript', bridgeScript((url.searchParams.get('theme') as Theme) ?? 'dark'));
      if (url.pathname === '/dist/webview.js') return send('text/javascript', readFileSync(join(distDir, 'webview.js')));
      if (url.pathname === '/dist/webview.css') return send('text/css', readFileSync(join(distDir, 'webview.css')));
      const theme = /^\/theme\/(dark|light|high-contrast)\.css$/.exec(url.pathname);
      if (theme) return send('text/css', readFileSync(new URL(`./themes/${theme[1]}.css`, import.meta.url)));
      res.writeHead(404).end();
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (theme: Theme = 'dark') => `http://127.0.0.1:${port}/?theme=${theme}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
