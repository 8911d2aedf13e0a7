// The spawn helper's entry point (see spawnHelper.ts for why it exists).
import { SpawnServer } from './helper.js';

new SpawnServer(process);
// The server is gone (exited, killed): so is any reason to be here. What was started keeps
// its stdio, whose other ends closed with the server, and ends as git does on EOF.
process.on('disconnect', () => process.exit(0));
