import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { LoadSummary } from './loadGenerator.js';

/**
 * Where the suite's measured figures go, to be quoted: GIT_SSHD_K8S_REPORTS, else
 * ~/.cache/git-sshd/k8s/reports (outside the run's temp dir, which is removed).
 */
export function reportDir(): string {
  const dir = process.env.GIT_SSHD_K8S_REPORTS ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'git-sshd', 'k8s', 'reports');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `<name>.md` (the latest) and a dated copy; returns the path of the latest. */
export function writeReport(name: string, markdown: string): string {
  const dir = reportDir();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `${name}-${stamp}.md`), markdown);
  const latest = join(dir, `${name}.md`);
  writeFileSync(latest, markdown);
  return latest;
}

export function formatSummary(title: string, summary: LoadSummary): string {
  const rows = Object.entries(summary.byLabel).map(
    ([label, entry]) => `| ${label} | ${entry.attempted} | ${entry.ok} | ${entry.failed} | ${entry.rejected} | ${(entry.longestMs / 1000).toFixed(1)} |`,
  );
  return [
    `| ${title} | attempted | ok | failed | rejected | longest (s) |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    `| **all** | **${summary.attempted}** | **${summary.ok}** | **${summary.failed}** | **${summary.rejected}** | **${(summary.longestMs / 1000).toFixed(1)}** |`,
  ].join('\n');
}
