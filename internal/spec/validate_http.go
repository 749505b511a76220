// Checks of routed services: their http: section, host names, routes and
// health checks.

package spec

import (
	"fmt"
	"net/netip"
	"strings"
)

func (d *decoder) checkHTTP(s *Spec, p string, h *HTTP) {
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?# \t\r\n") {
		d.fail(p+".path", false, "must be a URL path prefix starting with \"/\", e.g. path: /api (got %s)", quoteValue(h.Path))
	}
	seen := map[string]bool{}
	for i, host := range h.Hosts {
		q := index(p+".hosts", i)
		if r := checkHost(host); r != "" {
			d.fail(q, false, "%s", r)
			continue
		}
		if seen[host] {
			d.fail(q, false, "%q is listed twice", host)
		}
		seen[host] = true
	}
	switch h.TLS.Mode {
	case TLSOff, TLSAuto, TLSInternal:
		if h.TLS.Cert != "" || h.TLS.Key != "" {
			d.fail(p+".tls", false, "cert and key only go with tls: {cert: FILE, key: FILE}")
		}
	case TLSFiles:
		if h.TLS.Cert == "" {
			d.fail(p+".tls.cert", true, "is required: the certificate file (PEM) on the server, e.g. cert: /etc/ssl/example.pem")
		}
		if h.TLS.Key == "" {
			d.fail(p+".tls.key", true, "is required: the private key file (PEM) on the server, e.g. key: /etc/ssl/example.key")
		}
	default:
		d.fail(p+".tls", false, "must be off, auto, internal or {cert: FILE, key: FILE} (got %s)", quoteValue(h.TLS.Mode))
	}
	if h.TLS.Mode == TLSAuto {
		if len(h.Hosts) == 0 {
			d.fail(p+".tls", false, "tls: auto needs hosts: certificates are issued for host names (add hosts: [example.com], or use tls: internal)")
		}
		for i, host := range h.Hosts {
			q := index(p+".hosts", i)
			switch {
			case strings.HasPrefix(host, "*."):
				d.fail(q, false, "tls: auto cannot get a certificate for the wildcard %q: wildcards need a DNS challenge; use tls: {cert: FILE, key: FILE}", host)
			case isIP(host):
				d.fail(q, false, "tls: auto cannot get a certificate for the IP address %q; use tls: internal", host)
			}
		}
	}
	if h.Canonical != "" {
		switch {
		case strings.HasPrefix(h.Canonical, "*."):
			d.fail(p+".canonical", false, "must be one host name, not a wildcard (got %s)", quoteValue(h.Canonical))
		case !contains(h.Hosts, h.Canonical):
			d.fail(p+".canonical", false, "must be one of hosts: %s (got %s)", quoteList(h.Hosts), quoteValue(h.Canonical))
		}
	}
	if h.HSTS && h.TLS.Mode == TLSOff {
		d.fail(p+".hsts", false, "needs tls: browsers ignore HSTS over plain HTTP (set tls: auto, internal or {cert, key})")
	}
	if h.MaxBody < 0 {
		d.fail(p+".max_body", false, "must not be negative")
	}
	d.checkDuration(p+".hold_timeout", h.HoldTimeout, 0)
	d.checkDuration(p+".drain_timeout", h.DrainTimeout, 0)
	for _, prefix := range sortedKeys(h.Static) {
		q := p + ".static." + prefix
		if len(prefix) < 2 || !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") || strings.ContainsAny(prefix, "?# \t\r\n") {
			d.fail(q, true, "must be a path prefix that starts and ends with \"/\", e.g. /media/ (got %s)", quoteValue(prefix))
		}
		vol := h.Static[prefix]
		if _, ok := s.Volumes[vol]; !ok {
			d.fail(q, false, "must name a volume declared under volumes: (%s); got %s", quoteList(sortedKeys(s.Volumes)), quoteValue(vol))
		}
	}
}

// checkHost returns why h is not a valid route host, or "".
func checkHost(h string) string {
	const rule = "must be a lower-case host name (example.com), a wildcard (*.example.com) or an IP address"
	if h == "" {
		return rule + " (got \"\")"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return fmt.Sprintf("must not have a zone (got %s)", quoteValue(h))
		}
		if a.String() != h {
			return fmt.Sprintf("write the address as %q (got %s)", a.String(), quoteValue(h))
		}
		return ""
	}
	switch {
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%s, not a URL (got %s)", rule, quoteValue(h))
	case strings.HasPrefix(h, "["):
		return fmt.Sprintf("write IPv6 addresses without brackets (got %s)", quoteValue(h))
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%s, without a port (got %s)", rule, quoteValue(h))
	case strings.ToLower(h) != h:
		return fmt.Sprintf("must be lower case: write %q (got %s)", strings.ToLower(h), quoteValue(h))
	}
	name := strings.TrimPrefix(h, "*.")
	if len(name) > 253 {
		return fmt.Sprintf("%s; a host name is at most 253 characters", rule)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("%s (got %s)", rule, quoteValue(h))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("%s (got %s)", rule, quoteValue(h))
			}
		}
	}
	if isDigits(labels[len(labels)-1]) {
		return fmt.Sprintf("%s (got %s, which is neither)", rule, quoteValue(h))
	}
	return ""
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// checkRoutes checks what involves every routed service: hosts are unique
// and at most one service is the default route.
func (d *decoder) checkRoutes(s *Spec) {
	owner := map[string]string{}
	defaultRoute := ""
	for _, name := range sortedKeys(s.Services) {
		svc := s.Services[name]
		if svc == nil || svc.HTTP == nil {
			continue
		}
		p := "services." + name + ".http"
		if len(svc.HTTP.Hosts) == 0 {
			if defaultRoute != "" {
				d.fail(p, true, "has no hosts:, and neither has %q: only one routed service can take the default route; give one of them hosts:", defaultRoute)
			} else {
				defaultRoute = name
			}
		}
		for i, h := range svc.HTTP.Hosts {
			if other, ok := owner[h]; ok && other != name {
				d.fail(index(p+".hosts", i), false, "%q is also a host of service %q; a host routes to one service", h, other)
			}
			owner[h] = name
		}
	}
}

func (d *decoder) checkHealth(p string, h *Health, routed bool) {
	var set []string
	if h.Path != "" {
		set = append(set, "path")
	}
	if len(h.Command) > 0 {
		set = append(set, "command")
	}
	if h.TCP {
		set = append(set, "tcp")
	}
	switch len(set) {
	case 0:
		d.fail(p, true, "set one of path: (HTTP GET), command: or tcp: true, e.g. health: {path: /healthz}")
	case 1:
	default:
		d.fail(p, true, "set exactly one of path: (HTTP GET), command: or tcp: true (got %s)", strings.Join(set, " and "))
	}
	if h.Path != "" {
		if !routed {
			d.fail(p+".path", false, "an HTTP check needs a routed service (one with http:); use command: or tcp: true")
		} else if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n") {
			d.fail(p+".path", false, "must be a URL path starting with \"/\", e.g. path: /healthz (got %s)", quoteValue(h.Path))
		}
	}
	if len(h.Command) > 0 {
		d.checkCommand(p+".command", h.Command)
	}
	d.checkDuration(p+".interval", h.Interval, 1)
	d.checkDuration(p+".timeout", h.Timeout, 1)
	d.checkDuration(p+".start_period", h.StartPeriod, 0)
	if h.Retries < 1 {
		d.fail(p+".retries", false, "must be a whole number ≥ 1 (got %d)", h.Retries)
	}
}
