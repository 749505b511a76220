package proxy

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A minimal RFC 6455 implementation over net/http Hijack, enough for a real
// handshake and echoed frames.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWriteFrame writes one final frame; clients mask, servers do not.
func wsWriteFrame(w io.Writer, opcode byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | opcode}
	bit := byte(0)
	if mask {
		bit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, bit|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, bit|126, byte(n>>8), byte(n))
	default:
		return errors.New("frame too large for this test")
	}
	data := payload
	if mask {
		var key [4]byte
		_, _ = rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		data = make([]byte, len(payload))
		for i := range payload {
			data[i] = payload[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, data...))
	return err
}

func wsReadFrame(r io.Reader) (opcode byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	opcode = hdr[0] & 0x0f
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err = io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	} else if n == 127 {
		return 0, nil, errors.New("frame too large for this test")
	}
	var key [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err = io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return opcode, payload, nil
}

// wsEchoHandler accepts a websocket and echoes text frames until a close.
func wsEchoHandler(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Key") == "" {
		http.Error(w, "websocket only", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := wsReadFrame(brw)
		if err != nil {
			return
		}
		if op == 0x8 { // close
			_ = wsWriteFrame(conn, 0x8, payload, false)
			return
		}
		if wsWriteFrame(conn, op, append([]byte("echo: "), payload...), false) != nil {
			return
		}
	}
}

func TestWebSocket(t *testing.T) { schemes(t, testWebSocket) }

func testWebSocket(t *testing.T, sch scheme) {
	p, srv := newTestProxyScheme(t, sch, Options{}, ServerOptions{})
	ws := newHandlerBackend(t, wsEchoHandler)
	mustSetApp(t, p, "chat", RouteTargets{Route: Route{Hosts: []string{"chat.test"}}, Targets: []Target{{ID: "ws", Addr: ws.Listener.Addr().String()}}})

	conn, err := srv.tryDial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /socket HTTP/1.1\r\nHost: chat.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) ||
		!strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", res.StatusCode, res.Header)
	}

	for _, msg := range []string{"hello", strings.Repeat("long message ", 40)} {
		if err := wsWriteFrame(conn, 0x1, []byte(msg), true); err != nil {
			t.Fatal(err)
		}
		op, payload, err := wsReadFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if op != 0x1 || string(payload) != "echo: "+msg {
			t.Fatalf("echo: opcode %d %q", op, payload)
		}
	}
	if s, _ := statusOf(p, "chat", "ws"); s.InFlight != 1 {
		t.Fatalf("an open websocket should count as in flight: %+v", s)
	}

	// A drain waits for the upgraded connection.
	mustSetApp(t, p, "chat", RouteTargets{Route: Route{Hosts: []string{"chat.test"}}})
	drained := make(chan int, 1)
	go func() { drained <- p.Drain(bg, []string{"ws"}, 0) }()
	waitFor(t, "Drain to wait on the websocket", func() bool { return p.drainWaiters("ws") > 0 })

	if err := wsWriteFrame(conn, 0x8, []byte{0x03, 0xe8}, true); err != nil {
		t.Fatal(err)
	}
	if op, _, err := wsReadFrame(br); err != nil || op != 0x8 {
		t.Fatalf("close frame: %d %v", op, err)
	}
	conn.Close()
	if n := <-drained; n != 0 {
		t.Fatalf("Drain after the websocket closed: %d", n)
	}
}
