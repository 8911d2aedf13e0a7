/**
 * The messages between the server and its spawn helper, over Node's IPC channel. A
 * process's three stdio sockets go first, one per message (IPC carries one descriptor per
 * message), then the request that starts it; the helper answers once (`spawned` or
 * `failed`) and, for a started process, reports its `exit`.
 */
export type ToHelper =
  | { readonly kind: 'stdio'; readonly id: number; readonly index: 0 | 1 | 2 }
  | {
      readonly kind: 'spawn';
      readonly id: number;
      readonly command: string;
      readonly args: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly cwd?: string;
      readonly detached: boolean;
    };

export type FromHelper =
  | { readonly kind: 'spawned'; readonly id: number; readonly pid: number }
  | { readonly kind: 'failed'; readonly id: number; readonly code: string; readonly message: string }
  | { readonly kind: 'exit'; readonly id: number; readonly code: number | null; readonly signal: NodeJS.Signals | null };
