// goclient is a small ssh(1)-like client on golang.org/x/crypto/ssh, so that git and the
// interop tests can drive git-sshd through Go's SSH implementation:
//
//	goclient [-p port] [-i key] [-o SendEnv=NAME]... [-kex a,b] [-rekey-bytes n] [-input-first] user@host command...
//
// It copies stdin/stdout/stderr and exits with the remote command's status (255 when the
// connection fails), as ssh does. Host keys are not checked: the tests run on loopback.
//
// -input-first sends all of stdin and its EOF before the command is requested. A Go
// program writing to a session's stdin pipe can do this by chance; the flag makes that
// order certain, for tests.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

type optionList []string

func (o *optionList) String() string     { return strings.Join(*o, ",") }
func (o *optionList) Set(v string) error { *o = append(*o, v); return nil }

func main() {
	port := flag.String("p", "22", "port")
	keyFile := flag.String("i", "", "private key file")
	kex := flag.String("kex", "", "key exchange algorithms, in order of preference")
	rekeyBytes := flag.Uint64("rekey-bytes", 0, "rekey after this many bytes (0: Go's default)")
	inputFirst := flag.Bool("input-first", false, "send stdin and its EOF before requesting the command")
	var options optionList
	flag.Var(&options, "o", "ssh option; only SendEnv=NAME is used")
	flag.Parse()
	if flag.NArg() < 1 || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "usage: goclient -i key [-p port] user@host [command...]")
		os.Exit(255)
	}
	os.Exit(run(flag.Arg(0), *port, *keyFile, *kex, *rekeyBytes, *inputFirst, options, strings.Join(flag.Args()[1:], " ")))
}

func run(destination, port, keyFile, kex string, rekeyBytes uint64, inputFirst bool, options []string, command string) int {
	user, host, found := strings.Cut(destination, "@")
	if !found {
		user, host = os.Getenv("USER"), destination
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return fail(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return fail(err)
	}
	config := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}
	config.RekeyThreshold = rekeyBytes
	if kex != "" {
		config.KeyExchanges = strings.Split(kex, ",")
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(host, port), config)
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return fail(err)
	}
	defer session.Close()
	for _, option := range options {
		if name, ok := strings.CutPrefix(option, "SendEnv="); ok && os.Getenv(name) != "" {
			if err := session.Setenv(name, os.Getenv(name)); err != nil {
				return fail(err)
			}
		}
	}
	session.Stdout = os.Stdout
	session.Stderr = os.Stderr
	stdin, err := session.StdinPipe()
	if err != nil {
		return fail(err)
	}
	if inputFirst {
		if _, err := io.Copy(stdin, os.Stdin); err != nil {
			return fail(err)
		}
		if err := stdin.Close(); err != nil {
			return fail(err)
		}
	} else {
		go func() {
			io.Copy(stdin, os.Stdin)
			stdin.Close()
		}()
	}
	if command == "" {
		err = session.Shell()
	} else {
		err = session.Start(command)
	}
	if err != nil {
		return fail(err)
	}
	if err := session.Wait(); err != nil {
		if exit, ok := err.(*ssh.ExitError); ok {
			return exit.ExitStatus()
		}
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "goclient:", err)
	return 255
}
