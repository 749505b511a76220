//go:build linux

package process

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ports is the table of ports handed out to instances, shared by every
// Runtime of the process. An instance keeps its port across restarts, so
// its port stays reserved while it is down (crashed, waiting to restart)
// until the instance is removed.
var ports = struct {
	sync.Mutex
	owner map[int]string // port → instance state directory
}{owner: map[int]string{}}

func reservePort(port int, owner string) {
	ports.Lock()
	defer ports.Unlock()
	ports.owner[port] = owner
}

// releasePorts frees the ports owner holds.
func releasePorts(owner string) {
	ports.Lock()
	defer ports.Unlock()
	for p, o := range ports.owner {
		if o == owner {
			delete(ports.owner, p)
		}
	}
}

// portRange returns where free ports are picked by default: the 10000
// ports just below the kernel's ephemeral range, so that neither outgoing
// connections nor programs binding port 0 take the port of an instance
// while it restarts.
func portRange() (lo, hi int) {
	eph := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				eph = n
			}
		}
	}
	hi = eph - 1
	lo = max(hi-9999, 10000)
	if hi <= lo {
		return 0, 0
	}
	return lo, hi
}

// pickPort returns a free port on 127.0.0.1 in [lo, hi] (random; 0, 0:
// any the kernel gives) that no instance holds, and reserves it for owner.
func pickPort(lo, hi int, owner string) (int, error) {
	try := func(port int) (int, bool) {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return 0, false
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		ports.Lock()
		defer ports.Unlock()
		if _, taken := ports.owner[port]; taken {
			return 0, false
		}
		ports.owner[port] = owner
		return port, true
	}
	if lo > 0 && hi >= lo {
		n := hi - lo + 1
		start := rand.IntN(n)
		for i := range min(n, 1000) {
			if p, ok := try(lo + (start+i)%n); ok {
				return p, nil
			}
		}
	}
	for range 100 {
		if p, ok := try(0); ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("pick a port: %w", errors.New("no free port found"))
}
