package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/client"
)

// unixServer accepts one connection on a socket and hands it to fn.
func unixServer(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fn(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock
}

func runDialStdio(t *testing.T, sock string, in io.Reader, out io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := dialStdio(ctx, sock, in, out)
	if ctx.Err() != nil {
		t.Fatal("dial-stdio did not end")
	}
	return err
}

// The end of standard input half-closes the socket: the server reads to
// EOF and still answers.
func TestDialStdioHalfClose(t *testing.T) {
	sock := unixServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		io.WriteString(c, "got "+string(b))
	})
	var out bytes.Buffer
	if err := runDialStdio(t, sock, strings.NewReader("ping"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got ping" {
		t.Fatalf("out %q", out.String())
	}
}

// The server closing ends dial-stdio even though standard input is open.
func TestDialStdioServerCloses(t *testing.T) {
	sock := unixServer(t, func(c net.Conn) {
		io.WriteString(c, "bye")
	})
	in, inW := io.Pipe()
	defer inW.Close()
	var out bytes.Buffer
	if err := runDialStdio(t, sock, in, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bye" {
		t.Fatalf("out %q", out.String())
	}
}

func TestDialStdioNoServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	err := runDialStdio(t, sock, strings.NewReader(""), io.Discard)
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "unix://"+sock) || !strings.Contains(err.Error(), "--socket") {
		t.Fatalf("%v", err)
	}
}
