"""A small ssh(1)-like client on Paramiko or AsyncSSH, so that git and the interop tests
can drive git-sshd through either library:

    pyclient.py --lib paramiko|asyncssh [-p port] [-i key] [-o SendEnv=NAME]...
                [--kex a,b] [--rekey-bytes n] [--show-ext-info] user@host [command...]

Copies stdin/stdout/stderr and exits with the remote command's status (255 when the
connection or authentication fails), as ssh does. Host keys are not checked: the tests
run on loopback. --show-ext-info prints the server's EXT_INFO (Paramiko) to stderr.
"""
import argparse
import asyncio
import os
import sys
import threading


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=["paramiko", "asyncssh"], required=True)
    parser.add_argument("-p", dest="port", type=int, default=22)
    parser.add_argument("-i", dest="key", required=True)
    parser.add_argument("-o", dest="options", action="append", default=[])
    parser.add_argument("--kex", default="")
    parser.add_argument("--rekey-bytes", type=int, default=0)
    parser.add_argument("--show-ext-info", action="store_true")
    parser.add_argument("destination")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser.parse_args()


def environment(options):
    names = [option[len("SendEnv="):] for option in options if option.startswith("SendEnv=")]
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def run_paramiko(args, user, host, command):
    import paramiko

    transport = paramiko.Transport((host, args.port))
    if args.kex:
        transport.get_security_options().kex = args.kex.split(",")
    if args.rekey_bytes:
        transport.packetizer.REKEY_BYTES = args.rekey_bytes
    transport.start_client(timeout=60)
    key = paramiko.PKey.from_path(args.key)
    transport.auth_publickey(user, key)
    if args.show_ext_info:
        for name, value in sorted(transport.server_extensions.items()):
            text = value.decode() if isinstance(value, bytes) else str(value)
            print(f"ext-info {name}={text}", file=sys.stderr, flush=True)
    channel = transport.open_session()
    for name, value in environment(args.options).items():
        channel.set_environment_variable(name, value)
    if command:
        channel.exec_command(command)
    else:
        channel.invoke_shell()

    def copy_in():
        while True:
            data = os.read(0, 32768)
            if not data:
                channel.shutdown_write()
                return
            channel.sendall(data)

    def copy_out(receive, fd):
        while True:
            data = receive(32768)
            if not data:
                return
            os.write(fd, data)

    threading.Thread(target=copy_in, daemon=True).start()
    err = threading.Thread(target=copy_out, args=(channel.recv_stderr, 2))
    err.start()
    copy_out(channel.recv, 1)
    err.join()
    status = channel.recv_exit_status()
    transport.close()
    return status


async def run_asyncssh(args, user, host, command):
    import asyncssh

    options = dict(
        port=args.port,
        username=user,
        client_keys=[asyncssh.read_private_key(args.key)],
        known_hosts=None,
        agent_path=None,
    )
    if args.kex:
        options["kex_algs"] = args.kex.split(",")
    if args.rekey_bytes:
        options["rekey_bytes"] = args.rekey_bytes
    async with asyncssh.connect(host, **options) as connection:
        process = await connection.create_process(command or None, env=environment(args.options), encoding=None)
        loop = asyncio.get_running_loop()
        chunks = asyncio.Queue()

        def read_stdin():  # a daemon thread: stdin may be a file or terminal the event loop cannot watch
            while True:
                data = os.read(0, 32768)
                loop.call_soon_threadsafe(chunks.put_nowait, data)
                if not data:
                    return

        async def copy_in():
            while True:
                data = await chunks.get()
                if not data:
                    process.stdin.write_eof()
                    return
                process.stdin.write(data)
                await process.stdin.drain()

        async def copy_out(reader, fd):
            while True:
                data = await reader.read(32768)
                if not data:
                    return
                os.write(fd, data)

        threading.Thread(target=read_stdin, daemon=True).start()
        copying_in = asyncio.ensure_future(copy_in())
        await asyncio.gather(copy_out(process.stdout, 1), copy_out(process.stderr, 2))
        await process.wait_closed()
        copying_in.cancel()
        return process.exit_status if process.exit_status is not None else 255


def main():
    args = parse_args()
    user, _, host = args.destination.rpartition("@")
    user = user or os.environ.get("USER", "")
    command = " ".join(args.command)
    try:
        if args.lib == "paramiko":
            status = run_paramiko(args, user, host, command)
        else:
            status = asyncio.run(run_asyncssh(args, user, host, command))
    except Exception as error:  # what ssh would print, then its status
        print(f"pyclient ({args.lib}): {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        status = 255
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
