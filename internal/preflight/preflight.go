// Package preflight is `moorage check`: what a deploy of an upload would
// meet, found without changing anything that runs. It validates the spec,
// flags security problems of the spec and the app's config, and reports
// the spec's `checks:` run in a built, never-started release. Each finding
// is pass, warn or fail, with the fix in one line.
package preflight

import (
	"fmt"
	"net"
	"strings"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/spec"
)

// Statuses of a finding (the wire's, internal/api).
const (
	Pass = api.CheckPass
	Warn = api.CheckWarn
	Fail = api.CheckFail
)

// Result is one finding. Its wire form is api.CheckResult (the same
// fields: a conversion).
type Result struct {
	Name    string  `json:"name"`   // "spec", "security.root", "checks[0]", ...
	Status  string  `json:"status"` // Pass, Warn or Fail
	Message string  `json:"message"`
	Fix     string  `json:"fix,omitempty"`    // one line; empty on pass
	Output  string  `json:"output,omitempty"` // a check's output (tail)
	Seconds float64 `json:"seconds,omitempty"`
}

// Report is the outcome of a preflight. Its wire form is api.CheckReport.
type Report struct {
	App      string   `json:"app"`
	Runtime  string   `json:"runtime,omitempty"`
	Plan     string   `json:"plan,omitempty"`      // the plan a deploy would run
	PlanNote string   `json:"plan_note,omitempty"` // why there is no plan
	Results  []Result `json:"results"`
}

// Failed reports whether any finding failed.
func (r *Report) Failed() bool {
	for _, x := range r.Results {
		if x.Status == Fail {
			return true
		}
	}
	return false
}

// SpecResult is the finding of parsing the spec (api.SpecCheck's, which
// the CLI gives when the spec is invalid locally).
func SpecResult(file string, err error) Result {
	return Result(api.SpecCheck(file, err))
}

// Config is what the server holds for the app: variable name → whether it
// is set as a secret. Never values.
type Config map[string]bool

// Security flags the spec's security problems. serverRoot says whether the
// server (and so a process-runtime service without user:) runs as root.
func Security(sp *spec.Spec, cfg Config, serverRoot bool) []Result {
	var out []Result
	add := func(name, status, msg, fix string) {
		out = append(out, Result{Name: name, Status: status, Message: msg, Fix: fix})
	}

	// Secrets referenced but not set (a deploy is refused).
	var missing, plain []string
	for _, k := range sp.SecretNames() {
		secret, ok := cfg[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !secret:
			plain = append(plain, k)
		}
	}
	switch {
	case len(missing) > 0:
		add("security.secrets", Fail, "secrets declared but not set: "+strings.Join(missing, ", "),
			fmt.Sprintf("moorage config set -a %s --secret %s=... (or < file)", sp.App, missing[0]))
	case len(plain) > 0:
		add("security.secrets", Fail, "secrets set as plain values: "+strings.Join(plain, ", "),
			fmt.Sprintf("moorage config unset -a %s %s, then moorage config set --secret %s=...", sp.App, plain[0], plain[0]))
	default:
		add("security.secrets", Pass, fmt.Sprintf("%d declared secret(s) set", len(sp.SecretNames())), "")
	}

	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		p := "services." + name
		// Root.
		switch {
		case spec.ContainerRuntime(sp.Runtime) && svc.AllowRoot && (svc.User == "" || isRoot(svc.User)):
			add("security.root."+name, Warn, p+" may run as root (allow_root: true)",
				"add a non-root USER to the Dockerfile or set "+p+".user: 65534, and drop allow_root")
		case sp.Runtime == spec.RuntimeProcess && svc.User == "" && svc.AllowRoot && serverRoot:
			add("security.root."+name, Warn, p+" runs as root: the server runs as root and the service sets allow_root: true",
				"drop allow_root: the service then runs as the app's own user (moorage-"+sp.App+")")
		case sp.Runtime == spec.RuntimeProcess && svc.User == "" && serverRoot:
			add("security.root."+name, Pass, p+" runs as the app's own unprivileged user", "")
		case sp.Runtime == spec.RuntimeProcess && isRoot(svc.User):
			add("security.root."+name, Warn, p+" runs as root (user: "+svc.User+")",
				"set "+p+".user to an unprivileged user (for example www-data)")
		default:
			add("security.root."+name, Pass, p+" does not run as root", "")
		}
		if !svc.Routed() {
			continue
		}
		// Health check on web.
		if svc.Health == nil || svc.Health.Implied {
			add("security.health."+name, Warn, p+" is routed but has no health check: a broken release that still listens gets traffic",
				"add "+p+".health: {path: /healthz}")
		} else {
			add("security.health."+name, Pass, p+" has a health check", "")
		}
		// TLS for public hosts.
		if svc.HTTP.TLS.Mode == spec.TLSOff || svc.HTTP.TLS.Mode == "" {
			var public []string
			for _, h := range svc.HTTP.Hosts {
				if Public(h) {
					public = append(public, h)
				}
			}
			if len(public) > 0 {
				add("security.tls."+name, Warn, p+" serves public host(s) "+strings.Join(public, ", ")+" over plain HTTP",
					"set "+p+".http.tls: auto")
			} else {
				add("security.tls."+name, Pass, p+" serves no public host without TLS", "")
			}
		} else {
			add("security.tls."+name, Pass, p+" uses tls: "+svc.HTTP.TLS.Mode, "")
		}
	}

	// Writable roots (docker only: the process runtime has no root
	// filesystem of its own).
	if spec.ContainerRuntime(sp.Runtime) {
		var writable []string
		for _, name := range sp.ServiceNames() {
			if !sp.Services[name].ReadOnly {
				writable = append(writable, name)
			}
		}
		if len(writable) > 0 {
			add("security.read_only", Warn, "writable root filesystem: "+strings.Join(writable, ", "),
				fmt.Sprintf("set services.%s.read_only: true and keep what it writes on a volume", writable[0]))
		} else {
			add("security.read_only", Pass, "every service has a read-only root filesystem", "")
		}
	}
	return out
}

func isRoot(user string) bool {
	return user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:")
}

// Public reports whether a route's host name is reachable from the
// internet: not an IP in a private range, not localhost, not a reserved
// local domain.
func Public(host string) bool {
	h := strings.TrimPrefix(strings.ToLower(host), "*.")
	if ip := net.ParseIP(h); ip != nil {
		return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
	}
	if h == "localhost" || !strings.Contains(h, ".") {
		return false
	}
	for _, suffix := range []string{".localhost", ".local", ".test", ".internal", ".lan", ".home.arpa", ".example", ".invalid"} {
		if strings.HasSuffix(h, suffix) {
			return false
		}
	}
	return true
}
