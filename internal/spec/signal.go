package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// signals are the signals a spec may name, by name without "SIG".
var signals = []struct {
	name string
	sig  syscall.Signal
}{
	{"HUP", syscall.SIGHUP}, {"INT", syscall.SIGINT}, {"QUIT", syscall.SIGQUIT},
	{"ILL", syscall.SIGILL}, {"TRAP", syscall.SIGTRAP}, {"ABRT", syscall.SIGABRT},
	{"BUS", syscall.SIGBUS}, {"FPE", syscall.SIGFPE}, {"KILL", syscall.SIGKILL},
	{"USR1", syscall.SIGUSR1}, {"SEGV", syscall.SIGSEGV}, {"USR2", syscall.SIGUSR2},
	{"PIPE", syscall.SIGPIPE}, {"ALRM", syscall.SIGALRM}, {"TERM", syscall.SIGTERM},
	{"CHLD", syscall.SIGCHLD}, {"CONT", syscall.SIGCONT}, {"STOP", syscall.SIGSTOP},
	{"TSTP", syscall.SIGTSTP}, {"TTIN", syscall.SIGTTIN}, {"TTOU", syscall.SIGTTOU},
	{"URG", syscall.SIGURG}, {"XCPU", syscall.SIGXCPU}, {"XFSZ", syscall.SIGXFSZ},
	{"VTALRM", syscall.SIGVTALRM}, {"PROF", syscall.SIGPROF}, {"WINCH", syscall.SIGWINCH},
	{"IO", syscall.SIGIO}, {"SYS", syscall.SIGSYS},
}

// ParseSignal parses a signal name, with or without "SIG", in any case
// ("SIGTERM", "TERM", "sigquit"), or its number on this system ("15").
func ParseSignal(s string) (syscall.Signal, error) {
	sig, reason := parseSignal(s)
	if reason != "" {
		return 0, fmt.Errorf("invalid signal %q: %s", s, reason)
	}
	return sig, nil
}

const signalUsage = "use a name like SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 (with or without SIG) or a number"

func parseSignal(s string) (syscall.Signal, string) {
	s = strings.TrimSpace(s)
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err == nil {
			for _, x := range signals {
				if int(x.sig) == n {
					return x.sig, ""
				}
			}
		}
		return 0, "unknown signal number; " + signalUsage
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, x := range signals {
		if x.name == name {
			return x.sig, ""
		}
	}
	return 0, "unknown signal; " + signalUsage
}

// String returns the signal's name, like "SIGTERM" ("" for 0).
func (s Signal) String() string {
	if s == 0 {
		return ""
	}
	for _, x := range signals {
		if x.sig == syscall.Signal(s) {
			return "SIG" + x.name
		}
	}
	return strconv.Itoa(int(s))
}

// MarshalJSON writes the signal as its name ("SIGTERM"), so stored specs
// do not depend on the numbering of the system that wrote them.
func (s Signal) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.String())
}

// UnmarshalJSON reads a name ("SIGTERM", "TERM"), a number, or "" (0).
func (s *Signal) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = 0
		return nil
	case string:
		if v == "" {
			*s = 0
			return nil
		}
		if isDigits(v) {
			n, err := strconv.Atoi(v)
			if err != nil || n > 64 {
				return fmt.Errorf("invalid signal %q", v)
			}
			*s = Signal(n)
			return nil
		}
		sig, err := ParseSignal(v)
		if err != nil {
			return err
		}
		*s = Signal(sig)
		return nil
	case float64:
		if v < 0 || v > 64 || v != float64(int(v)) {
			return fmt.Errorf("invalid signal %v", v)
		}
		*s = Signal(int(v))
		return nil
	default:
		return fmt.Errorf("invalid signal %s", b)
	}
}
