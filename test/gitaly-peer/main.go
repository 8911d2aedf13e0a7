// Command gitaly-peer is a test peer for git-sshd's Gitaly transport: a gRPC server for
// Gitaly's SSHService built on Gitaly's own code for everything that is wire protocol
// (the backchannel/sidechannel handshake and yamux session from client.SidechannelServer
// and client.OpenServerSidechannel, the v2 token check from auth.CheckToken, the message
// types from gitalypb), running the local git for each RPC, with the repository's hooks.
//
// It writes one JSON line per event on stdout: {"event":"listening","address":...} once,
// then {"event":"rpc",...} per finished RPC with the metadata it carried, for tests to read.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	gitalyauth "gitlab.com/gitlab-org/gitaly/v18/auth"
	"gitlab.com/gitlab-org/gitaly/v18/client"
	"gitlab.com/gitlab-org/gitaly/v18/proto/go/gitalypb"
	"gitlab.com/gitlab-org/gitaly/v18/streamio"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type storageFlag map[string]string

func (s storageFlag) String() string { return fmt.Sprint(map[string]string(s)) }

func (s storageFlag) Set(value string) error {
	name, dir, ok := strings.Cut(value, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want name=dir, got %q", value)
	}
	s[name] = dir
	return nil
}

var stdoutMu sync.Mutex

func emit(event map[string]any) {
	line, _ := json.Marshal(event)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, _ = os.Stdout.Write(append(line, '\n'))
}

func main() {
	listen := flag.String("listen", "tcp://127.0.0.1:0", "tcp://host:port or unix:///path")
	token := flag.String("token", "", "Gitaly auth token (v2); empty = no authentication")
	tlsCert := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "key of -tls-cert")
	yamuxEcho := flag.Bool("yamux-echo", false, "serve plain hashicorp/yamux echo sessions instead of Gitaly (tests of git-sshd's yamux)")
	pushBytes := flag.Int("yamux-push-bytes", 0, "with -yamux-echo: bytes of a pattern the server sends on a stream it opens")
	storages := storageFlag{}
	flag.Var(storages, "storage", "name=dir, repeatable")
	flag.Parse()

	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	entry := logrus.NewEntry(logger)

	creds := insecure.NewCredentials()
	if *tlsCert != "" {
		var err error
		if creds, err = credentials.NewServerTLSFromFile(*tlsCert, *tlsKey); err != nil {
			logger.Fatalf("tls: %v", err)
		}
	}

	network, address := "tcp", strings.TrimPrefix(*listen, "tcp://")
	if strings.HasPrefix(*listen, "unix://") {
		network, address = "unix", strings.TrimPrefix(*listen, "unix://")
	}
	listener, err := net.Listen(network, address)
	if err != nil {
		logger.Fatalf("listen: %v", err)
	}

	if *yamuxEcho {
		emit(map[string]any{"event": "listening", "address": "tcp://" + listener.Addr().String()})
		serveYamuxEcho(listener, *pushBytes)
		return
	}

	check := func(ctx context.Context) error {
		if *token == "" {
			return nil
		}
		return gitalyauth.CheckToken(ctx, *token, time.Now())
	}
	server := grpc.NewServer(
		client.SidechannelServer(entry, creds),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			err := check(ctx)
			if err == nil {
				var resp any
				resp, err = handler(ctx, req)
				record(ctx, info.FullMethod, err)
				return resp, err
			}
			record(ctx, info.FullMethod, err)
			return nil, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, stream grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			err := check(stream.Context())
			if err == nil {
				err = handler(srv, stream)
			}
			record(stream.Context(), info.FullMethod, err)
			return err
		}),
	)
	gitalypb.RegisterSSHServiceServer(server, &sshServer{storages: storages})

	shown := listener.Addr().String()
	if network == "unix" {
		shown = "unix://" + shown
	} else {
		shown = "tcp://" + shown
	}
	emit(map[string]any{"event": "listening", "address": shown})
	if err := server.Serve(listener); err != nil {
		logger.Fatalf("serve: %v", err)
	}
}

// record reports a finished RPC with the metadata it carried (the token left out).
func record(ctx context.Context, method string, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	fields := map[string]string{}
	for key, values := range md {
		if key == "authorization" {
			continue
		}
		fields[key] = strings.Join(values, ",")
	}
	emit(map[string]any{"event": "rpc", "method": method, "metadata": fields, "code": status.Code(err).String(), "error": errorText(err)})
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type sshServer struct {
	gitalypb.UnimplementedSSHServiceServer
	storages storageFlag
}

func (s *sshServer) repoPath(repo *gitalypb.Repository) (string, error) {
	root, ok := s.storages[repo.GetStorageName()]
	if !ok {
		return "", status.Errorf(codes.InvalidArgument, "storage not found: %q", repo.GetStorageName())
	}
	relative := filepath.Clean(repo.GetRelativePath())
	if filepath.IsAbs(relative) || relative == ".." || strings.HasPrefix(relative, "../") {
		return "", status.Errorf(codes.InvalidArgument, "relative path escapes its storage: %q", repo.GetRelativePath())
	}
	path := filepath.Join(root, relative)
	if _, err := os.Stat(filepath.Join(path, "HEAD")); err != nil {
		return "", status.Errorf(codes.NotFound, "repository not found: %q", repo.GetRelativePath())
	}
	return path, nil
}

// git builds the git command as Gitaly would run it: config options as -c, the protocol
// version in GIT_PROTOCOL, GitLab's identity for the hooks.
func git(ctx context.Context, name, repoPath, protocol string, config []string, env ...string) *exec.Cmd {
	args := []string{}
	for _, option := range config {
		args = append(args, "-c", option)
	}
	args = append(args, name, repoPath)
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), env...)
	if protocol != "" {
		cmd.Env = append(cmd.Env, "GIT_PROTOCOL="+protocol)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// sidebandWriter frames output as Gitaly does on the sidechannel: pkt-lines whose first
// payload byte is the band (1 stdout, 2 stderr).
type sidebandWriter struct {
	mu   *sync.Mutex
	conn io.Writer
	band byte
}

const maxSidebandData = 65520 - 4 - 1

func (w sidebandWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := min(len(p), maxSidebandData)
		if _, err := fmt.Fprintf(w.conn, "%04x%c", chunk+5, w.band); err != nil {
			return written, err
		}
		if _, err := w.conn.Write(p[:chunk]); err != nil {
			return written, err
		}
		written += chunk
		p = p[chunk:]
	}
	return written, nil
}

func (s *sshServer) SSHUploadPackWithSidechannel(ctx context.Context, req *gitalypb.SSHUploadPackWithSidechannelRequest) (*gitalypb.SSHUploadPackWithSidechannelResponse, error) {
	path, err := s.repoPath(req.GetRepository())
	if err != nil {
		return nil, err
	}
	conn, err := client.OpenServerSidechannel(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "opening sidechannel: %v", err)
	}
	defer conn.Close()

	var mu sync.Mutex
	cmd := git(ctx, "upload-pack", path, req.GetGitProtocol(), req.GetGitConfigOptions())
	cmd.Stdout = sidebandWriter{mu: &mu, conn: conn, band: 1}
	cmd.Stderr = sidebandWriter{mu: &mu, conn: conn, band: 2}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stdin: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, status.Errorf(codes.Internal, "starting upload-pack: %v", err)
	}
	// The client's half-close (a flush on the sidechannel) ends stdin; git may finish
	// before it, so the copy is not waited for.
	go func() {
		_, _ = io.Copy(stdin, conn)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		return nil, status.Errorf(codes.Internal, "running upload-pack: %v", err)
	}
	if err := conn.Close(); err != nil {
		return nil, status.Errorf(codes.Internal, "close sidechannel: %v", err)
	}
	return &gitalypb.SSHUploadPackWithSidechannelResponse{}, nil
}

// stdStream is what SSHReceivePack and SSHUploadArchive share: stdin chunks in, stdout,
// stderr and a final exit status out.
type stdStream struct {
	recvStdin  func() ([]byte, error)
	sendStdout func([]byte) error
	sendStderr func([]byte) error
	sendExit   func(int32) error
}

func runStreamed(cmd *exec.Cmd, stream stdStream) error {
	var mu sync.Mutex
	cmd.Stdout = streamio.NewSyncWriter(&mu, stream.sendStdout)
	cmd.Stderr = streamio.NewSyncWriter(&mu, stream.sendStderr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return status.Errorf(codes.Internal, "stdin: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return status.Errorf(codes.Internal, "start: %v", err)
	}
	go func() {
		_, _ = io.Copy(stdin, streamio.NewReader(stream.recvStdin))
		_ = stdin.Close()
	}()
	waitErr := cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		return stream.sendExit(0)
	case errors.As(waitErr, &exitErr) && exitErr.ExitCode() >= 0:
		if err := stream.sendExit(int32(exitErr.ExitCode())); err != nil {
			return err
		}
		return status.Errorf(codes.Internal, "cmd wait: %v", waitErr)
	default:
		return status.Errorf(codes.Internal, "cmd wait: %v", waitErr)
	}
}

func (s *sshServer) SSHReceivePack(stream gitalypb.SSHService_SSHReceivePackServer) error {
	first, err := stream.Recv()
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	if first.GetGlId() == "" {
		return status.Error(codes.InvalidArgument, "empty GlId")
	}
	if first.Stdin != nil {
		return status.Error(codes.InvalidArgument, "non-empty data in first request")
	}
	path, err := s.repoPath(first.GetRepository())
	if err != nil {
		return err
	}
	cmd := git(stream.Context(), "receive-pack", path, first.GetGitProtocol(), first.GetGitConfigOptions(),
		"GL_ID="+first.GetGlId(), "GL_REPOSITORY="+first.GetGlRepository(), "GL_USERNAME="+first.GetGlUsername(),
		"GL_PROJECT_PATH="+first.GetRepository().GetGlProjectPath(), "GL_PROTOCOL=ssh")
	return runStreamed(cmd, stdStream{
		recvStdin: func() ([]byte, error) {
			req, err := stream.Recv()
			return req.GetStdin(), err
		},
		sendStdout: func(p []byte) error { return stream.Send(&gitalypb.SSHReceivePackResponse{Stdout: p}) },
		sendStderr: func(p []byte) error { return stream.Send(&gitalypb.SSHReceivePackResponse{Stderr: p}) },
		sendExit: func(code int32) error {
			return stream.Send(&gitalypb.SSHReceivePackResponse{ExitStatus: &gitalypb.ExitStatus{Value: code}})
		},
	})
}

func (s *sshServer) SSHUploadArchive(stream gitalypb.SSHService_SSHUploadArchiveServer) error {
	first, err := stream.Recv()
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	if first.Stdin != nil {
		return status.Error(codes.InvalidArgument, "non-empty stdin in first request")
	}
	path, err := s.repoPath(first.GetRepository())
	if err != nil {
		return err
	}
	cmd := git(stream.Context(), "upload-archive", path, "", nil)
	return runStreamed(cmd, stdStream{
		recvStdin: func() ([]byte, error) {
			req, err := stream.Recv()
			return req.GetStdin(), err
		},
		sendStdout: func(p []byte) error { return stream.Send(&gitalypb.SSHUploadArchiveResponse{Stdout: p}) },
		sendStderr: func(p []byte) error { return stream.Send(&gitalypb.SSHUploadArchiveResponse{Stderr: p}) },
		sendExit: func(code int32) error {
			return stream.Send(&gitalypb.SSHUploadArchiveResponse{ExitStatus: &gitalypb.ExitStatus{Value: code}})
		},
	})
}
