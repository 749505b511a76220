// Package dockersock lets tests make the real Docker Engine answer at a
// socket of their own, from the moment they choose: what a server sees
// when Docker starts after it.
package dockersock

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// Engine is the real engine's socket: DOCKER_HOST's when it is a unix
// one, else Docker's default.
func Engine() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

// Forward makes the real engine answer at the unix socket sock from now on
// (a byte forwarder), until the test ends.
func Forward(t testing.TB, sock string) {
	t.Helper()
	real := Engine()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("unix", real)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
}
