// Runs after `npm ci` (package.json "postinstall"), on the Node that the project's scripts run on.
//
// npm itself may run on an older Node (the machines ship Node 20) and builds dependencies'
// native addons with it, while `npm start` / `npm test` put node_modules/.bin first on PATH,
// where the node-linux-<arch> package puts Node 24. An addon built for Node 20's ABI does not
// load on Node 24, and ssh2 then silently falls back to its much slower JavaScript crypto. So
// the addons are rebuilt here, against the headers that the Node package ships (include/node;
// nodejs.org, where node-gyp would fetch them from, need not be reachable).
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const MIN_NODE_MAJOR = 24;
const root = join(import.meta.dirname, '..');
const require = createRequire(join(root, 'package.json'));

const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_NODE_MAJOR) {
  console.error(
    `git-sshd needs Node >= ${MIN_NODE_MAJOR}, and the scripts would run ${process.version} (${process.execPath}).\n` +
      `On Linux x64 and arm64, npm installs Node ${MIN_NODE_MAJOR} itself (the optional dependency node-linux-${process.arch});\n` +
      `on ${process.platform}-${process.arch} there is none: install Node ${MIN_NODE_MAJOR} LTS and run npm ci again.`,
  );
  process.exit(1);
}

const nodeDir = dirname(dirname(realpathSync(process.execPath)));
const hasHeaders = existsSync(join(nodeDir, 'include', 'node', 'node.h'));
// npm passes its own `nodedir` (Debian's npm: /usr, Node 20's headers) in the environment.
const gypEnv = hasHeaders ? { ...process.env, npm_config_nodedir: nodeDir } : process.env;
const headers = hasHeaders ? [`--nodedir=${nodeDir}`] : [];
const nodeGyp = process.env.npm_config_node_gyp ?? npmsNodeGyp();

/** The addons to rebuild: where their binding.gyp is, extra gyp arguments, and the file to load. */
const addons = [
  {
    name: 'ssh2 crypto binding',
    dir: join(dirname(require.resolve('ssh2/package.json')), 'lib', 'protocol', 'crypto'),
    // ssh2's install.js passes the OpenSSL major version the binding compiles against.
    args: [`--real_openssl_major=${process.versions.openssl.split('.')[0]}`],
    binary: join('build', 'Release', 'sshcrypto.node'),
  },
  {
    name: 'cpu-features',
    // ssh2's optional dependency: resolved from ssh2, where npm put it for ssh2.
    dir: optionalPackageDir('cpu-features', require.resolve('ssh2/package.json')),
    args: [],
    binary: join('build', 'Release', 'cpufeatures.node'),
  },
];

if (nodeGyp === undefined) {
  console.error('node-gyp not found: run this through npm (npm run postinstall), which brings its own.');
  process.exit(1);
}

const failed = [];
for (const addon of addons) {
  if (addon.dir === undefined) continue;
  const built = join(addon.dir, addon.binary);
  if (loads(built)) {
    console.log(`${addon.name}: already built for Node ${process.versions.node}`);
    continue;
  }
  console.log(`${addon.name}: building for Node ${process.versions.node} (${process.arch})`);
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...headers, ...addon.args], {
    cwd: addon.dir,
    env: gypEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0 || !loads(built)) {
    failed.push(addon.name);
    // node-gyp's log is long and mostly compiler noise: its end says what went wrong.
    console.error(`${(result.stderr ?? '').split('\n').slice(-30).join('\n')}\n${addon.name}: the build for Node ${process.versions.node} failed.`);
  }
}
if (failed.length > 0) {
  // ssh2 still works without them (without its binding on JavaScript crypto several times
  // slower; without cpu-features it cannot tell whether the CPU has AES-NI): say so loudly,
  // but leave the choice to the operator (the test suite asserts the binding is in use).
  console.error(
    `WARNING: not built for Node ${process.versions.node}: ${failed.join(', ')}. ` +
      'With python3, make and g++ installed, run npm ci again.',
  );
}

/** Whether this Node loads the addon; in a child, because dlopen keeps a stale file loaded. */
function loads(file) {
  if (!existsSync(file)) return false;
  const probe = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { stdio: 'ignore' });
  return probe.status === 0;
}

/** The node-gyp that npm bundles, for a run outside npm (which names it in the environment). */
function npmsNodeGyp() {
  const npmCli = process.env.npm_execpath;
  const candidates = [
    npmCli && join(dirname(dirname(npmCli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(dirname(realpathSync(process.execPath))), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find((file) => file && existsSync(file));
}

function optionalPackageDir(name, from) {
  try {
    return dirname(createRequire(from).resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}
