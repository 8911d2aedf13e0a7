import { create } from '@bufbuild/protobuf';
import type { GitService, GitalyCall } from '../backends/backend.js';
import type { GitOutcome, GitRun, GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import type { GitalyMetrics } from '../monitoring/gitalyMetrics.js';
import { raceAbort } from './abort.js';
import type { GitalyChannel } from './channel.js';
import type { GitalyChannels } from './channels.js';
import { classify, StartDeadline } from './failure.js';
import { RepositorySchema, type Repository } from './gen/gitaly/ssh_pb.js';
import { receivePack, uploadArchive } from './streamed.js';
import { gitalyAuthorization } from './token.js';
import { uploadPack } from './uploadPack.js';

export interface GitalyTransportOptions {
  readonly channels: GitalyChannels;
  /** How long Gitaly may take to start answering a call (its sidechannel, or a first message). */
  readonly startTimeoutMs: number;
  /** Sent as `x-gitlab-client-name`, with the command after it. */
  readonly clientName: string;
  readonly log: Logger;
  readonly metrics: GitalyMetrics;
}

const SERVICE = 'gitaly.SSHService';
const METHODS: Readonly<Record<GitService, { readonly name: string; readonly type: 'unary' | 'bidi_stream' }>> = {
  'git-upload-pack': { name: 'SSHUploadPackWithSidechannel', type: 'unary' },
  'git-receive-pack': { name: 'SSHReceivePack', type: 'bidi_stream' },
  'git-upload-archive': { name: 'SSHUploadArchive', type: 'bidi_stream' },
};

/** What one call needs, whichever RPC it is. */
export interface CallContext {
  readonly run: GitRun;
  readonly call: GitalyCall;
  readonly repository: Repository;
  readonly headers: Record<string, string>;
  /** Cancels the RPC: the session's signal, the start deadline, or the end of the command. */
  readonly signal: AbortSignal;
  /** Gitaly has started answering: the start deadline no longer applies. */
  readonly started: () => void;
  readonly log: Logger;
}

/**
 * git in Gitaly, as gitlab-sshd runs it: upload-pack over the sidechannel, receive-pack and
 * upload-archive as bidirectional streams, on one cached channel per Gitaly and token.
 */
export class GitalyTransport implements GitTransport {
  constructor(private readonly options: GitalyTransportOptions) {}

  async run(run: GitRun): Promise<GitOutcome> {
    const call = run.target.gitaly;
    if (!call) throw new Error('GitalyTransport asked to run a command without a Gitaly call');
    const { metrics } = this.options;
    const method = METHODS[run.service];
    const labels = { grpc_type: method.type, grpc_service: SERVICE, grpc_method: method.name };
    const log = this.options.log.child({ correlation_id: call.correlationId, grpc_method: method.name, gitaly_address: call.address, gl_repository: call.glRepository });
    log.info(
      { command: run.service, gl_project_path: call.repository.glProjectPath, username: call.glUsername, git_protocol: run.gitProtocol ?? '', remote_ip: call.metadata.remote_ip },
      'executing git command in Gitaly',
    );
    metrics.started.inc(labels);
    const startedAt = performance.now();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(run.signal.reason);
    run.signal.addEventListener('abort', onAbort, { once: true });
    const deadline = new StartDeadline(this.options.startTimeoutMs, controller);
    let code = 'OK';
    let channel: GitalyChannel | undefined;
    try {
      channel = await this.options.channels.get(call.address, call.token, controller.signal);
      const context: CallContext = {
        run,
        call,
        repository: create(RepositorySchema, { ...call.repository, gitAlternateObjectDirectories: [...call.repository.gitAlternateObjectDirectories] }),
        headers: this.headers(call, run.service),
        signal: controller.signal,
        started: () => deadline.clear(),
        log,
      };
      const running = run.service === 'git-upload-pack' ? uploadPack(channel, context) : run.service === 'git-receive-pack' ? receivePack(channel, context) : uploadArchive(channel, context);
      running.catch(() => undefined);
      // The deadline or the session ends the call at once, even where the RPC library would
      // still wait (an HTTP/2 handshake that never completes); what is left is cancelled below.
      return await raceAbort(running, controller.signal);
    } catch (err) {
      const failure = classify(err, { aborted: run.signal.aborted, deadline, startTimeoutMs: this.options.startTimeoutMs });
      // A Gitaly that took the connection but does not answer on it: dial afresh next time.
      if (deadline.fired) channel?.close();
      code = failure.code;
      if (failure.errorClass) {
        metrics.errors.inc({ grpc_method: method.name, class: failure.errorClass });
        if (failure.errorClass === 'system') log.error({ err, grpc_code: code }, 'Gitaly call failed');
        else log.info({ err, grpc_code: code }, 'Gitaly refused the call');
      }
      throw failure.error;
    } finally {
      deadline.clear();
      run.signal.removeEventListener('abort', onAbort);
      // Whatever is left of the call (a stdin pump, a stream) stops with it.
      controller.abort(new Error('the command is over'));
      metrics.handled.inc({ ...labels, grpc_code: code });
      metrics.handling.observe({ ...labels, grpc_code: code }, (performance.now() - startedAt) / 1000);
    }
  }

  /** The call's metadata as gitlab-shell sends it, and a fresh v2 token. */
  private headers(call: GitalyCall, service: GitService): Record<string, string> {
    return {
      ...call.metadata,
      'x-gitlab-correlation-id': call.correlationId,
      'x-gitlab-client-name': `${this.options.clientName}-${service}`,
      ...(call.token === '' ? {} : { authorization: gitalyAuthorization(call.token) }),
    };
  }
}
