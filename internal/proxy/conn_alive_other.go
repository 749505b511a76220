//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

// alive cannot peek at sockets here: it only refuses a connection with
// unread bytes buffered. A dead connection fails the request that reuses
// it, which idempotent requests then retry.
func (uc *upstreamConn) alive() bool { return uc.br.Buffered() == 0 }
