package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// unacked returns how many bytes written on c its peer has not yet
// acknowledged (TIOCOUTQ): 0 means everything written is in the peer's
// receive queue. -1 when c is closed or not a socket.
func unacked(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := int32(-1)
	if err := rc.Control(func(fd uintptr) {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
			n = -1
		}
	}); err != nil {
		return -1
	}
	return int(n)
}

// peerGone reports whether c's peer closed or reset it (a peek finds an
// EOF or an error, not just nothing to read).
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := true
	var buf [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = err != nil && err != syscall.EAGAIN || err == nil && n == 0
	})
	return gone
}
