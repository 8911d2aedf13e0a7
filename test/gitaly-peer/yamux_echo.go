package main

import (
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// serveYamuxEcho is the peer's second mode, for git-sshd's own yamux module: the real
// hashicorp/yamux as a server on every connection. It echoes each stream the client opens
// (closing its side after the client's FIN), opens one stream back carrying pushBytes of a
// known pattern, and pings the client often, closing the session if a ping goes unanswered.
func serveYamuxEcho(listener net.Listener, pushBytes int) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go func() {
			config := yamux.DefaultConfig()
			config.EnableKeepAlive = true
			config.KeepAliveInterval = 200 * time.Millisecond
			config.ConnectionWriteTimeout = 5 * time.Second
			config.LogOutput = io.Discard
			session, err := yamux.Server(conn, config)
			if err != nil {
				return
			}
			defer session.Close()
			if pushBytes > 0 {
				go func() {
					stream, err := session.Open()
					if err != nil {
						return
					}
					_, _ = io.Copy(stream, io.LimitReader(&pattern{}, int64(pushBytes)))
					_ = stream.Close()
				}()
			}
			for {
				stream, err := session.Accept()
				if err != nil {
					emit(map[string]any{"event": "yamux-session-closed", "error": err.Error()})
					return
				}
				go func() {
					n, _ := io.Copy(stream, stream)
					emit(map[string]any{"event": "yamux-echoed", "bytes": n})
					_ = stream.Close()
				}()
			}
		}()
	}
}

// pattern yields the bytes i % 251 for i = 0, 1, 2, ...
type pattern struct{ next int }

func (p *pattern) Read(buffer []byte) (int, error) {
	for i := range buffer {
		buffer[i] = byte(p.next % 251)
		p.next++
	}
	return len(buffer), nil
}
