/**
 * A text flame summary of a V8 .cpuprofile (node --cpu-prof): the top functions by self
 * time, and by inclusive time (a function's samples plus its callees', counted once per
 * sample even when it recurses). With a pattern, only the samples with a frame matching
 * it on the stack: e.g. the data path, 'channelOutput|uncorkSocket|onStreamRead'.
 *
 *   node --import tsx bench/profile-summary.ts CPU.*.cpuprofile [top=15] [pattern]
 */
import { readFileSync } from 'node:fs';
import { table } from './lib/stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, pattern] = process.argv.slice(2);
const under = pattern ? new RegExp(pattern) : undefined;
if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [top]');
const top = Number(topArg ?? 15);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id)!;
  if (under) {
    let matched = false;
    for (let at: number | undefined = id; at !== undefined && !matched; at = parent.get(at)) matched = under.test(label(byId.get(at)!));
    if (!matched) return;
  }
  total += micros;
  self.set(label(node), (self.get(label(node)) ?? 0) + micros);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = label(byId.get(at)!);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + micros);
  }
});
const rows = (map: Map<string, number>): string[][] =>
  [...map]
    .filter(([name]) => !/^\((root|program)\)/.test(name) || map === self)
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, micros]) => [name, (micros / 1000).toFixed(0), ((micros / total) * 100).toFixed(1)]);
console.log(`${file}${under ? ` (samples under /${pattern}/)` : ''}: ${(total / 1e6).toFixed(2)} s sampled\n\nBy self time:\n\n${table(['function', 'ms', '%'], rows(self))}\n\nBy inclusive time:\n\n${table(['function', 'ms', '%'], rows(inclusive))}`);
