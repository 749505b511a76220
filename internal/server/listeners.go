package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Listener names, as systemd's FileDescriptorName= and the handover give
// them. A listener passed without one of these names is matched by its
// address instead.
const (
	lnHTTP    = "http"
	lnHTTPS   = "https"
	lnMetrics = "metrics"
	lnAPI     = "api"
)

// Environment of a listener handover from an older moorage server (see
// Handover): the names of the listeners passed as fds 3, 4, ..., the pid of
// the process that passed them (the new process's parent), and the fd of
// the pipe on which the new process reports its progress.
const (
	envHandoverFDs   = "MOORAGE_HANDOVER_FDS"
	envHandoverPPID  = "MOORAGE_HANDOVER_PPID"
	envHandoverReady = "MOORAGE_HANDOVER_STATUS_FD"
)

// listenFDsStart is the first passed fd (after stdin, stdout, stderr), as
// in systemd's sd_listen_fds.
const listenFDsStart = 3

// inherited are the listening sockets this process was given: by systemd
// (socket activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) or by the
// server it takes over from (Handover).
type inherited struct {
	byName  map[string]net.Listener
	unnamed []net.Listener
	// status is the handover's status pipe (nil unless handed over).
	status *os.File
	// systemd says the sockets came from socket activation.
	systemd bool
}

// takeInherited collects the listeners passed to this process, and clears
// the variables that passed them so that no child inherits them.
func takeInherited() (*inherited, error) {
	in := &inherited{byName: map[string]net.Listener{}}
	var names []string
	n := 0
	switch {
	case os.Getenv("LISTEN_PID") != "":
		pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
		if err != nil || pid != os.Getpid() {
			// Meant for another process (a shell between systemd and us).
			clearListenEnv()
			return in, nil
		}
		if n, err = strconv.Atoi(os.Getenv("LISTEN_FDS")); err != nil || n < 0 {
			return nil, fmt.Errorf("LISTEN_FDS=%q is not a count of sockets", os.Getenv("LISTEN_FDS"))
		}
		if s := os.Getenv("LISTEN_FDNAMES"); s != "" {
			names = strings.Split(s, ":")
		}
		in.systemd = true
	case os.Getenv(envHandoverFDs) != "":
		ppid, err := strconv.Atoi(os.Getenv(envHandoverPPID))
		if err != nil || ppid != os.Getppid() {
			clearListenEnv()
			return in, nil
		}
		names = strings.Split(os.Getenv(envHandoverFDs), ":")
		n = len(names)
		fd, err := strconv.Atoi(os.Getenv(envHandoverReady))
		if err != nil || fd < listenFDsStart+n {
			return nil, fmt.Errorf("%s=%q is not the handover's status fd", envHandoverReady, os.Getenv(envHandoverReady))
		}
		syscall.CloseOnExec(fd)
		in.status = os.NewFile(uintptr(fd), "handover-status")
	default:
		return in, nil
	}
	clearListenEnv()
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "inherited-listener")
		// FileListener dups the fd through SyscallConn, keeping the shared
		// socket non-blocking (never f.Fd(), which would make it blocking
		// for every process that holds it).
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			in.closeAll()
			return nil, fmt.Errorf("passed fd %d is not a listening socket: %w", fd, err)
		}
		name := ""
		if i < len(names) {
			name = names[i]
		}
		switch name {
		case lnHTTP, lnHTTPS, lnMetrics, lnAPI:
			if in.byName[name] != nil {
				in.closeAll()
				ln.Close()
				return nil, fmt.Errorf("two passed sockets are named %q", name)
			}
			in.byName[name] = ln
		default:
			in.unnamed = append(in.unnamed, ln)
		}
	}
	return in, nil
}

func clearListenEnv() {
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", envHandoverFDs, envHandoverPPID, envHandoverReady} {
		os.Unsetenv(k)
	}
}

// handedOver reports whether an older server passed the listeners.
func (in *inherited) handedOver() bool { return in != nil && in.status != nil }

// any reports whether any listener was passed.
func (in *inherited) any() bool {
	return in != nil && (len(in.byName) > 0 || len(in.unnamed) > 0)
}

// take returns the passed listener for name: the one so named, else the
// one whose address is addr (network "tcp" or "unix"); nil if none.
func (in *inherited) take(name, network, addr string) (net.Listener, error) {
	if in == nil {
		return nil, nil
	}
	if ln := in.byName[name]; ln != nil {
		delete(in.byName, name)
		if ln.Addr().Network() != network {
			ln.Close()
			return nil, fmt.Errorf("the passed %q socket is %s, want %s", name, ln.Addr().Network(), network)
		}
		return ln, nil
	}
	for i, ln := range in.unnamed {
		if sameAddr(network, addr, ln.Addr()) {
			in.unnamed = append(in.unnamed[:i], in.unnamed[i+1:]...)
			return ln, nil
		}
	}
	return nil, nil
}

// sameAddr reports whether the configured address addr (":80",
// "127.0.0.1:8080", a socket path) is the bound address a.
func sameAddr(network, addr string, a net.Addr) bool {
	if a.Network() != network {
		return false
	}
	if network == "unix" {
		return a.String() == addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok || port != strconv.Itoa(ta.Port) {
		return false
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil { // a name: resolve as net.Listen would
		ips, err := net.LookupIP(host)
		if err != nil {
			return false
		}
		for _, x := range ips {
			if x.Equal(ta.IP) {
				return true
			}
		}
		return false
	}
	return ip.Equal(ta.IP)
}

// rest closes the passed listeners nothing took, saying so.
func (in *inherited) rest(log *slog.Logger) {
	if in == nil {
		return
	}
	for name, ln := range in.byName {
		log.Warn("a passed socket is not used: closed", "name", name, "addr", ln.Addr().String())
		ln.Close()
	}
	for _, ln := range in.unnamed {
		log.Warn("a passed socket matches none of the configured addresses (--http, --https, --metrics, --socket): closed", "addr", ln.Addr().String())
		ln.Close()
	}
	in.byName, in.unnamed = nil, nil
}

func (in *inherited) closeAll() {
	if in == nil {
		return
	}
	for _, ln := range in.byName {
		ln.Close()
	}
	for _, ln := range in.unnamed {
		ln.Close()
	}
	in.byName, in.unnamed = nil, nil
}

// report writes a line to the handover's status pipe (no-op otherwise).
func (in *inherited) report(line string) {
	if in == nil || in.status == nil {
		return
	}
	in.status.Write([]byte(line + "\n"))
}

// sdNotify sends state to systemd's notification socket (Type=notify),
// if there is one. It reports whether it was sent.
func sdNotify(state string) bool {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return false
	}
	// An abstract socket ("@name") is understood by net as it is.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err == nil
}
