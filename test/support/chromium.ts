// A real headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// the browser reads commands on its fd 3 and writes answers and events on its fd 4, each a JSON
// message ended by a NUL byte), so the browser tests need no npm dependency and no port.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { within } from './waiting.js';

/** Debian's package (apt-get install chromium); CHROMIUM overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return fs.existsSync(CHROMIUM_PATH);
}

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

export class Chromium {
  private readonly pending = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  private lastId = 0;
  private buffered = '';
  private readonly exited: Promise<void>;
  stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly input: Writable,
    output: Readable,
    private readonly profile: string,
  ) {
    output.setEncoding('utf8').on('data', (chunk: string) => this.receive(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    void this.exited.then(() => {
      for (const { reject } of this.pending.values()) reject(new Error(`chromium exited:\n${this.stderr}`));
      this.pending.clear();
    });
  }

  static launch(): Chromium {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-chromium-'));
    const child = spawn(
      CHROMIUM_PATH,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        // The CLI's default certificate chains to a CA of its own state directory.
        '--ignore-certificate-errors',
        `--user-data-dir=${profile}`,
        '--remote-debugging-pipe',
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    const input = child.stdio[3] as Writable | null;
    const output = child.stdio[4] as Readable | null;
    if (!input || !output) throw new Error('chromium was spawned without its debugging pipe');
    return new Chromium(child, input, output, profile);
  }

  /** One DevTools command; `sessionId` addresses a page attached with attach(). */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = ++this.lastId;
    const message: Message = { id, method, params, ...(sessionId !== undefined ? { sessionId } : {}) };
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.input.write(`${JSON.stringify(message)}\0`);
    return within(answer, `chromium to answer ${method}`, 30_000);
  }

  /** A new tab at about:blank, `width` x `height` CSS pixels, in the given color scheme. */
  async open(width: number, height: number, scheme: 'light' | 'dark'): Promise<ChromiumPage> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new ChromiumPage(this, sessionId, targetId);
    await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    await page.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: scheme }] });
    return page;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.send('Browser.close').catch(() => undefined);
      await within(this.exited, 'chromium to exit', 15_000).catch(() => {
        this.child.kill('SIGKILL');
        return this.exited;
      });
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\0')) >= 0) {
      const message = JSON.parse(this.buffered.slice(0, end)) as Message;
      this.buffered = this.buffered.slice(end + 1);
      if (message.id === undefined) continue; // an event: none is waited for
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(`DevTools: ${message.error.message}`));
      else waiter?.resolve(message.result ?? {});
    }
  }
}

export class ChromiumPage {
  constructor(
    private readonly browser: Chromium,
    private readonly sessionId: string,
    private readonly targetId: string,
  ) {}

  async close(): Promise<void> {
    await this.browser.send('Target.closeTarget', { targetId: this.targetId });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  async navigate(url: string): Promise<void> {
    const { errorText } = (await this.send('Page.navigate', { url })) as { errorText?: string };
    if (errorText !== undefined) throw new Error(`chromium could not load ${url}: ${errorText}`);
    // Page.navigate answers once the navigation commits, before the document is parsed.
    const deadline = Date.now() + 15_000;
    while ((await this.evaluate<string>('document.readyState')) !== 'complete') {
      if (Date.now() > deadline) throw new Error(`${url} did not finish loading`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The value of a JavaScript expression in the page (JSON-serializable). */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (exceptionDetails) throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value as T;
  }

  /** A PNG of the page at the viewport's width, down to the end of `until` (a selector) or of the document. */
  async screenshot(until?: string): Promise<Buffer> {
    const bottom = until !== undefined ? `document.querySelector(${JSON.stringify(until)}).getBoundingClientRect().bottom + scrollY + 16` : 'document.documentElement.scrollHeight';
    const height = await this.evaluate<number>(`Math.ceil(${bottom})`);
    const { cssLayoutViewport } = (await this.send('Page.getLayoutMetrics')) as { cssLayoutViewport: { clientWidth: number } };
    const { data } = (await this.send('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: cssLayoutViewport.clientWidth, height, scale: 1 },
    })) as { data: string };
    return Buffer.from(data, 'base64');
  }
}
