import { runFromProcess } from './usersCli.js';

/** `node dist/cli/users.js add|remove|list ...`: the users of the embedded backend. */
process.exitCode = runFromProcess([]);
