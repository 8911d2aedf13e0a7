import { runFromProcess } from './usersCli.js';

/** `node dist/cli/addUser.js --name ... --key ...`: `users.js add` by the name the chart's NOTES and older docs use. */
process.exitCode = runFromProcess(['add']);
