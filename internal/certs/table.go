package certs

import (
	"net"
	"slices"
	"strings"
)

// entry is how the certificate of one configured host is found.
type entry struct {
	app   string
	mode  string
	host  string    // as configured (canonical): "a.test", "*.a.test", "10.0.0.1" or "" (the default route)
	files *fileCert // spec.TLSFiles
}

// table is one immutable snapshot of every app's TLS hosts. The Manager
// keeps the current one behind an atomic pointer: handshakes read it
// without locking; SetApp and RemoveApp build a new one and swap it in.
type table struct {
	exact    map[string]*entry // "a.test", "10.0.0.1"
	wildcard map[string]*entry // "a.test" for "*.a.test"
	fallback *entry            // the default route, or nil
	// ips are the IP addresses that internal sites list: every internal IP
	// certificate covers them (a server behind NAT lists its public IP).
	ips   []net.IP
	ipKey string // ips, joined: part of the IP certificates' cache key
	// ipOwner is the entry of an IP address listed in hosts: (with TLS),
	// when all such addresses belong to one app: behind NAT, a client
	// connecting to the public address arrives on a private one no site
	// lists, without SNI; that app is the one it wants. ipApps are the apps
	// that list IP addresses, sorted.
	ipOwner *entry
	ipApps  []string
}

// lookup finds the entry for a canonical name: the exact host, else the
// wildcard of its parent domain, else the default route.
func (t *table) lookup(name string) *entry {
	if e := t.exact[name]; e != nil {
		return e
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		if e := t.wildcard[name[i+1:]]; e != nil {
			return e
		}
	}
	return t.fallback
}

// owner returns the entry that claims a canonical configured host ("": the
// default route), or nil.
func (t *table) owner(host string) *entry {
	switch {
	case host == "":
		return t.fallback
	case isWildcard(host):
		return t.wildcard[host[2:]]
	default:
		return t.exact[host]
	}
}

// conflict returns an error naming the first host of sites that an app
// other than app claims.
func (t *table) conflict(app string, sites []site) error {
	for _, s := range sites {
		hosts := s.hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			if e := t.owner(h); e != nil && e.app != app {
				return hostConflict(h, e.app)
			}
		}
	}
	return nil
}

// buildTable compiles every app's entries into a snapshot.
func buildTable(apps map[string][]*entry, extraIPs []net.IP) *table {
	t := &table{exact: map[string]*entry{}, wildcard: map[string]*entry{}}
	seen := map[string]bool{}
	addIP := func(ip net.IP) {
		if k := ip.String(); !seen[k] {
			seen[k] = true
			t.ips = append(t.ips, ip)
		}
	}
	for _, ip := range extraIPs {
		addIP(ip)
	}
	ipOwners := map[string]*entry{} // app → its preferred IP entry
	for _, entries := range apps {
		for _, e := range entries {
			switch {
			case e.host == "":
				t.fallback = e
			case isWildcard(e.host):
				t.wildcard[e.host[2:]] = e
			default:
				t.exact[e.host] = e
				ip := net.ParseIP(e.host)
				if ip == nil || e.mode == modeOff {
					break
				}
				if e.mode == modeInternal {
					addIP(ip)
				}
				if o := ipOwners[e.app]; o == nil || o.mode != modeInternal && e.mode == modeInternal {
					ipOwners[e.app] = e
				}
			}
		}
	}
	for app, e := range ipOwners {
		t.ipApps = append(t.ipApps, app)
		t.ipOwner = e
	}
	slices.Sort(t.ipApps)
	if len(t.ipApps) != 1 {
		t.ipOwner = nil
	}
	slices.SortFunc(t.ips, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	keys := make([]string, len(t.ips))
	for i, ip := range t.ips {
		keys[i] = ip.String()
	}
	t.ipKey = strings.Join(keys, ",")
	return t
}
