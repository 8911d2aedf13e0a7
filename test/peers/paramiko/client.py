"""A third SSH implementation for the key-exchange tests: Paramiko's client, limited to one
key exchange, runs one command (a shell when none is given) and copies its output.

usage: client.py HOST PORT USER KEYFILE KEX [COMMAND]
"""
import sys

import paramiko


def main():
    host, port, user, key_file, kex = sys.argv[1:6]
    command = sys.argv[6] if len(sys.argv) > 6 else None
    others = [name for name in paramiko.Transport._preferred_kex if name != kex]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host,
        port=int(port),
        username=user,
        key_filename=key_file,
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
        disabled_algorithms={"kex": others},
    )
    transport = client.get_transport()
    channel = transport.open_session()
    if command is None:
        channel.invoke_shell()
    else:
        channel.exec_command(command)
    channel.shutdown_write()
    output = b""
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            break
        output += chunk
    sys.stdout.write(output.decode())
    status = channel.recv_exit_status()
    client.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
