// A second, independent SSH implementation for the key-exchange tests: Go's
// golang.org/x/crypto/ssh client, limited to the key exchanges given with -kex, runs one
// command (a shell when none is given) and copies its output. Built by test/helpers/goPeer.ts into ~/.cache.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:22", "host:port")
	user := flag.String("user", "git", "user name")
	keyFile := flag.String("key", "", "private key file")
	kex := flag.String("kex", "", "comma-separated key exchanges, in order of preference")
	flag.Parse()
	if err := run(*addr, *user, *keyFile, *kex, strings.Join(flag.Args(), " ")); err != nil {
		fmt.Fprintln(os.Stderr, "go-ssh:", err)
		os.Exit(255)
	}
}

func run(addr, user, keyFile, kex, command string) error {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return err
	}
	config := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         30 * time.Second,
	}
	if kex != "" {
		config.KeyExchanges = strings.Split(kex, ",")
	}
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if err != nil {
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()
	session.Stdout = os.Stdout
	session.Stderr = os.Stderr
	session.Stdin = io.LimitReader(os.Stdin, 0)
	if command == "" {
		// No command: a shell, as `ssh host` asks for.
		if err = session.Shell(); err == nil {
			err = session.Wait()
		}
	} else {
		err = session.Run(command)
	}
	if exit, ok := err.(*ssh.ExitError); ok {
		os.Exit(exit.ExitStatus())
	}
	return err
}
