// Loading the CLI's certificate files again while it serves: on SIGHUP, and with --watch when
// the files change. A reload is all or nothing: every file must load and every key match its
// certificate before the listener is given the new credentials; otherwise the old ones stay.
import fs from 'node:fs';
import path from 'node:path';
import { readFingerprint, readServerCredential } from '../index.js';
import type { CredentialFiles, CredentialUpdate } from '../index.js';
import type { ServingCredentials } from './serving_credentials.js';
import type { CliLog } from './log.js';

/** Changes closer together than this are one reload: editors and `cp` write a file in steps. */
export const WATCH_DEBOUNCE_MS = 200;

function filesOf(source: ServingCredentials['files']): string[] {
  const all = [source.credential, ...(source.sniCredential ? [source.sniCredential] : [])].flatMap((files: CredentialFiles) => [
    files.certificateFile,
    files.privateKeyFile,
    ...(files.caCertificateFile !== undefined ? [files.caCertificateFile] : []),
  ]);
  return [...new Set(all.map((file) => path.resolve(file)))];
}

/** Where a path leads through its symlinks, or undefined while it leads nowhere. */
function resolved(file: string): string | undefined {
  try {
    return fs.realpathSync(file);
  } catch {
    return undefined;
  }
}

/**
 * What a reload swaps the credentials of: a single-thread listener (at once) or one with
 * workers (once every worker serves them: a promise that rejects if one cannot).
 */
export interface CredentialTarget {
  setCredentials(update: CredentialUpdate): void | Promise<void>;
}

export class CertificateReloader {
  private readonly watchers: fs.FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    private readonly listener: CredentialTarget,
    private readonly serving: ServingCredentials,
    private readonly log: CliLog,
  ) {}

  /**
   * Loads every file again and swaps them in; on any failure logs why and keeps the old
   * credentials. Resolves once the listener serves the new ones (every worker, with workers).
   */
  async reload(reason: string): Promise<boolean> {
    const { files, trustFile, fingerprintOf } = this.serving;
    try {
      // Read asynchronously and bounded in size before reading (CREDENTIAL_LIMITS): the server
      // keeps answering while a reload reads, and a huge file is refused, not parsed.
      const credential = await readServerCredential(files.credential);
      const sniCredential = files.sniCredential !== undefined ? await readServerCredential(files.sniCredential) : undefined;
      const fingerprint = await readFingerprint(trustFile);
      await this.listener.setCredentials(sniCredential !== undefined ? { credential, sniCredential } : { credential });
      this.log.reloaded(reason, fingerprintOf, fingerprint);
      return true;
    } catch (error) {
      const { message, code } = error as { message: string; code?: string };
      this.log.event('error', 'reloadFailed', `certificate reload (${reason}) failed, still serving the previous certificates: ${message}`, {
        reason,
        ...(code !== undefined ? { code } : {}),
      });
      return false;
    }
  }

  /**
   * Watches the directories of the certificate files (a file replaced by rename is a new
   * inode, which a watch on the file itself would miss) and reloads once changes settle.
   * A change of another name in the directory reloads too when it moved where a file's path
   * leads: Kubernetes mounts a Secret as dir/tls.crt -> ..data/tls.crt, ..data -> ..2026_xx,
   * and renews it by renaming a new ..data symlink over the old one, which no event names
   * tls.crt for.
   */
  watch(): void {
    const byDir = new Map<string, Set<string>>();
    for (const file of filesOf(this.serving.files)) {
      const names = byDir.get(path.dirname(file)) ?? new Set<string>();
      names.add(path.basename(file));
      byDir.set(path.dirname(file), names);
    }
    for (const [dir, names] of byDir) {
      const targets = new Map([...names].map((name) => [name, resolved(path.join(dir, name))]));
      const retargeted = (): boolean => {
        let moved = false;
        for (const [name, target] of targets) {
          const now = resolved(path.join(dir, name));
          if (now !== target) moved = true;
          targets.set(name, now);
        }
        return moved;
      };
      let watcher: fs.FSWatcher;
      try {
        watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name.toString()) || retargeted()) this.scheduleReload();
        });
      } catch (error) {
        // SIGHUP still reloads; the server keeps running without the watch.
        this.log.event('warn', 'watchFailed', `cannot watch ${dir} for certificate changes: ${(error as Error).message}`, { dir });
        continue;
      }
      watcher.on('error', (error) => this.log.event('warn', 'watchFailed', `watching ${dir} for certificate changes failed: ${error.message}`, { dir }));
      this.watchers.push(watcher);
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload('the certificate files changed'), WATCH_DEBOUNCE_MS);
  }

  close(): void {
    clearTimeout(this.debounce);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }
}
