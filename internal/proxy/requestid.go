package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// headerRequestID is the request ID header, propagated to the app and
// returned to the client. (Canonical form of X-Request-ID.)
const headerRequestID = "X-Request-Id"

// requestIDs generates request IDs: a random per-process prefix and a
// counter, 32 hex digits in all. Unique without a random read per request.
type requestIDs struct {
	prefix [16]byte // hex of 8 random bytes
	next   atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	g := &requestIDs{}
	hex.Encode(g.prefix[:], b[:])
	return g
}

const hexDigits = "0123456789abcdef"

func (g *requestIDs) new() string {
	var b [32]byte
	copy(b[:16], g.prefix[:])
	n := g.next.Add(1)
	for i := 31; i >= 16; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// validRequestID reports whether a client's X-Request-ID may be passed on:
// 1 to 128 characters of a conservative set, so it is safe in logs and
// headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '=', c == '/', c == '@':
		default:
			return false
		}
	}
	return true
}
