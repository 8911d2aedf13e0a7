/**
 * Where a process's CPU went, from `perf record -g` on the cpu-clock event (which needs no
 * PMU and, unlike V8's --cpu-prof, counts only time on a CPU, the kernel's included, and
 * every thread: the garbage collector's and the compiler's too). Each sample is put in one
 * category by its frames; git's processes are left out unless asked for.
 *
 *   BENCH_PERF=/tmp/perf BENCH_NODE_ARGS=--perf-basic-prof npm run bench:datapath
 *   node --import tsx bench/perf-summary.ts /tmp/perf/git-sshd-*.data [comm-pattern]
 */
import { spawnSync } from 'node:child_process';
import { table } from './lib/stats.js';

/**
 * First match wins, in this order. `stack`: any frame of the sample may match (the work a
 * call does on behalf of its caller: a system call, a collection); `leaf`: the frame on CPU.
 */
const CATEGORIES: Array<[string, 'stack' | 'leaf', RegExp]> = [
  ['garbage collection (all threads)', 'stack', /v8::internal::(Heap::|Scavenger|MarkCompact|ConcurrentMarking|Sweeper|MinorMarkSweep|MarkingVisitor|ArrayBufferSweeper|ScavengeJob|IncrementalMarking)/],
  ['JIT compilation', 'stack', /v8::internal::(compiler::|Compiler::|OptimizedCompilationJob|OptimizingCompile|maglev::|baseline::|Parser::)/],
  ["kernel: socket writes (TCP loopback, the client's receive included)", 'stack', /\b(tcp_sendmsg|sock_write_iter|do_writev|vfs_writev)\b/],
  ["kernel: reads (git's stdout, the client's socket)", 'stack', /\b(sock_read_iter|unix_stream_recvmsg|tcp_recvmsg|sock_recvmsg)\b/],
  ['kernel: epoll and scheduling', 'stack', /\b(do_epoll_wait|ep_poll|__schedule|futex_wait)\b/],
  ['kernel: page faults', 'stack', /\b(exc_page_fault)\b/],
  ['kernel: other', 'leaf', /\[kernel\.kallsyms\]/],
  ['cipher (OpenSSL: chacha20, poly1305, AES-GCM)', 'leaf', /(ChaCha20|chacha20|poly1305|Poly1305|aesni|aes_gcm|gcm_|ossl_|EVP_|aes_)/],
  ['memcpy / memset', 'leaf', /__mem(move|cpy|set)/],
  ['malloc / free', 'leaf', /\b(malloc|_int_malloc|_int_free|free|cfree|calloc|realloc|malloc_consolidate)\b/],
  ['JavaScript and the V8/Node runtime (streams, promises, ssh2)', 'leaf', /(JS:|Builtins_|v8::|node::|perf-\d+\.map)/],
];

const [file, commPattern] = process.argv.slice(2);
if (!file) throw new Error('usage: perf-summary.ts FILE.data [comm-pattern]');
const comm = new RegExp(commPattern ?? '^(MainThread|node|V8Worker|libuv-worker|DelayedTaskSche|PlatformWorker)');
const script = spawnSync('perf', ['script', '-i', file, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
if (script.status !== 0) throw new Error(`perf script: ${script.stderr}`);
const counts = new Map<string, number>();
let total = 0;
for (const block of script.stdout.split(/\n[ \t]*\n/)) {
  const [head, ...frames] = block.split('\n').filter((line) => line.trim() !== '');
  if (!head || !comm.test(head.trim())) continue;
  const stack = frames.join('\n');
  const category = CATEGORIES.find(([, scope, pattern]) => pattern.test(scope === 'stack' ? stack : (frames[0] ?? '')));
  const name = category?.[0] ?? 'other';
  counts.set(name, (counts.get(name) ?? 0) + 1);
  total += 1;
}
const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => [name, String(n), ((n / total) * 100).toFixed(1)]);
console.log(`${file}: ${total} samples of ${comm.source}\n\n${table(['where', 'samples', '%'], rows)}`);
