package certs

import "net"

// fakeConn is a connection whose local address is local ("ip:port"): the
// address a client reached the server on, as the handshake sees it.
type fakeConn struct {
	net.Conn
	local string
}

func (c fakeConn) LocalAddr() net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", c.local)
	return a
}
