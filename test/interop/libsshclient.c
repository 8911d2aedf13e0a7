/*
 * A small ssh(1)-like client on libssh, so that git and the interop tests can drive
 * git-sshd through libssh (Debian's libssh 0.10):
 *
 *   libsshclient [-p port] [-i key] [-o SendEnv=NAME]... [-kex a,b] user@host [command...]
 *
 * Asks whether the key is acceptable, then signs (as ssh_userauth_publickey_auto does),
 * copies stdin/stdout/stderr and exits with the remote command's status (255 when the
 * connection or authentication fails). Host keys are not checked: the tests run on loopback.
 */
#include <libssh/libssh.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(ssh_session session, const char *what) {
  fprintf(stderr, "libsshclient: %s: %s\n", what, session ? ssh_get_error(session) : "");
  return 255;
}

static int write_all(int fd, const char *data, int length) {
  while (length > 0) {
    ssize_t written = write(fd, data, (size_t)length);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return -1;
    data += written;
    length -= (int)written;
  }
  return 0;
}

/* Copies what the channel has for stdout (0) or stderr (1) without blocking. */
static int drain(ssh_channel channel, int is_stderr) {
  char buffer[32768];
  for (;;) {
    int n = ssh_channel_read_nonblocking(channel, buffer, sizeof buffer, is_stderr);
    if (n == SSH_ERROR) return -1;
    if (n <= 0) return 0;
    if (write_all(is_stderr ? 2 : 1, buffer, n) < 0) return -1;
  }
}

static int run(ssh_session session, ssh_channel channel) {
  char buffer[32768];
  int stdin_open = 1;
  while (!ssh_channel_is_eof(channel) && ssh_channel_is_open(channel)) {
    struct pollfd fds[2] = {{.fd = ssh_get_fd(session), .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    if (poll(fds, stdin_open ? 2 : 1, 1000) < 0 && errno != EINTR) return -1;
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, buffer, sizeof buffer);
      if (n > 0) {
        if (ssh_channel_write(channel, buffer, (uint32_t)n) == SSH_ERROR) return -1;
      } else if (n == 0 || errno != EINTR) {
        stdin_open = 0;
        ssh_channel_send_eof(channel);
      }
    }
    if (drain(channel, 0) < 0 || drain(channel, 1) < 0) return -1;
  }
  if (drain(channel, 0) < 0 || drain(channel, 1) < 0) return -1;
  return 0;
}

int main(int argc, char **argv) {
  const char *port = "22", *key_file = NULL, *kex = NULL, *send_env[8];
  int envs = 0, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (i + 1 >= argc) break;
    if (strcmp(argv[i], "-p") == 0) port = argv[++i];
    else if (strcmp(argv[i], "-i") == 0) key_file = argv[++i];
    else if (strcmp(argv[i], "-kex") == 0) kex = argv[++i];
    else if (strcmp(argv[i], "-o") == 0) {
      const char *option = argv[++i];
      if (strncmp(option, "SendEnv=", 8) == 0 && envs < 8) send_env[envs++] = option + 8;
    } else break;
  }
  if (i >= argc || key_file == NULL) {
    fprintf(stderr, "usage: libsshclient -i key [-p port] [-kex list] user@host [command...]\n");
    return 255;
  }
  char destination[256];
  snprintf(destination, sizeof destination, "%s", argv[i++]);
  char *host = strchr(destination, '@');
  const char *user = destination;
  if (host) *host++ = '\0'; else { host = destination; user = getenv("USER"); }
  char command[8192] = "";
  for (; i < argc; i++) {
    if (command[0]) strncat(command, " ", sizeof command - strlen(command) - 1);
    strncat(command, argv[i], sizeof command - strlen(command) - 1);
  }

  ssh_session session = ssh_new();
  int strict = 0;
  unsigned int port_number = (unsigned int)atoi(port);
  ssh_options_set(session, SSH_OPTIONS_HOST, host);
  ssh_options_set(session, SSH_OPTIONS_PORT, &port_number);
  ssh_options_set(session, SSH_OPTIONS_USER, user);
  ssh_options_set(session, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
  ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  if (kex && ssh_options_set(session, SSH_OPTIONS_KEY_EXCHANGE, kex) < 0) return fail(session, "key exchange option");
  if (ssh_connect(session) != SSH_OK) return fail(session, "connect");

  ssh_key key = NULL;
  if (ssh_pki_import_privkey_file(key_file, NULL, NULL, NULL, &key) != SSH_OK) return fail(session, "private key");
  ssh_key public_key = NULL;
  if (ssh_pki_export_privkey_to_pubkey(key, &public_key) != SSH_OK) return fail(session, "public key");
  if (ssh_userauth_try_publickey(session, NULL, public_key) != SSH_AUTH_SUCCESS) return fail(session, "key not acceptable");
  if (ssh_userauth_publickey(session, NULL, key) != SSH_AUTH_SUCCESS) return fail(session, "authentication");

  ssh_channel channel = ssh_channel_new(session);
  if (channel == NULL || ssh_channel_open_session(channel) != SSH_OK) return fail(session, "channel");
  for (int e = 0; e < envs; e++) {
    const char *value = getenv(send_env[e]);
    if (value && ssh_channel_request_env(channel, send_env[e], value) != SSH_OK) return fail(session, "env");
  }
  int started = command[0] ? ssh_channel_request_exec(channel, command) : ssh_channel_request_shell(channel);
  if (started != SSH_OK) return fail(session, "exec");
  if (run(session, channel) < 0) return fail(session, "transfer");
  ssh_channel_send_eof(channel);
  ssh_channel_close(channel);
  int status = ssh_channel_get_exit_status(channel);
  ssh_channel_free(channel);
  ssh_disconnect(session);
  ssh_free(session);
  ssh_key_free(key);
  ssh_key_free(public_key);
  return status < 0 ? 255 : status;
}
