//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"syscall"
)

// alive reports whether an idle connection can carry a new request: a
// non-blocking peek at the socket finds neither an EOF (the upstream
// closed it) nor stray bytes (a response nobody asked for, which would
// otherwise be read as the answer to the next request: another client's
// bytes). It does not wait and ignores the read deadline.
func (uc *upstreamConn) alive() bool {
	if uc.br.Buffered() > 0 {
		return false
	}
	if uc.peekFn == nil {
		sc, ok := uc.conn.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		uc.peekFn = func(fd uintptr) {
			uc.peekN, _, uc.peekErr = syscall.Recvfrom(int(fd), uc.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		}
		uc.raw = rc
	}
	if err := uc.raw.Control(uc.peekFn); err != nil {
		return false
	}
	return uc.peekErr == syscall.EAGAIN || uc.peekErr == syscall.EWOULDBLOCK
}
