//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"syscall"
)

// alive reports whether an idle connection is still usable: a peek at the
// socket finds no EOF (the upstream closed it) and no stray bytes.
func (uc *upstreamConn) alive() bool {
	if uc.peekFn == nil {
		sc, ok := uc.conn.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		uc.peekFn = func(fd uintptr) bool {
			uc.peekN, _, uc.peekErr = syscall.Recvfrom(int(fd), uc.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true
		}
		uc.raw = rc
	}
	if err := uc.raw.Read(uc.peekFn); err != nil {
		return false
	}
	return uc.peekErr == syscall.EAGAIN || uc.peekErr == syscall.EWOULDBLOCK
}
