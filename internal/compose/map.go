package compose

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/moorage/moorage/internal/spec"
)

type mapper struct {
	p   *types.Project
	src *sources
	dir string
	app string

	errs  []Diag
	warns []Diag

	role   map[string]string // compose service → role
	ext    map[string]*svcExt
	names  map[string]string // compose service → moorage name
	out    *outSpec
	mapped map[string]*Mapped
	// volume bookkeeping: compose volume → moorage name and its users
	volName  map[string]string
	volMount map[string]string // moorage volume → mount
	volBy    map[string]string // moorage volume → the compose service that set its mount
	accVols  map[string]string // compose volume → accessory using it
	svcVols  map[string]string // compose volume → artifact service using it
	// taskFiles: release task → the project directories it bind-mounts
	taskFiles map[string][]string
}

func (m *mapper) errf(key, format string, a ...any) {
	m.errs = append(m.errs, Diag{Pos: m.src.find(key), Key: key, Msg: fmt.Sprintf(format, a...)})
}

func (m *mapper) warnf(key, format string, a ...any) {
	m.warns = append(m.warns, Diag{Pos: m.src.find(key), Key: key, Msg: fmt.Sprintf(format, a...)})
}

// Images moorage runs as accessories without being told, and the port
// each listens on by default.
var wellKnown = []struct {
	names  []string
	port   int
	backup string
}{
	{[]string{"postgres", "postgis/postgis", "bitnami/postgresql", "timescale/timescaledb", "pgvector/pgvector"}, 5432, "postgres"},
	{[]string{"redis", "bitnami/redis", "valkey/valkey", "redis/redis-stack-server"}, 6379, ""},
	{[]string{"mysql", "mariadb", "bitnami/mysql", "bitnami/mariadb"}, 3306, ""},
	{[]string{"memcached", "bitnami/memcached"}, 11211, ""},
	{[]string{"mongo", "bitnami/mongodb"}, 27017, ""},
	{[]string{"rabbitmq"}, 5672, ""},
}

// Images whose job moorage's own proxy does (reverse proxies and their
// certificate companions): skipped, with a note.
var proxyImages = []string{"nginxproxy/nginx-proxy", "jwilder/nginx-proxy", "nginxproxy/acme-companion",
	"jrcs/letsencrypt-nginx-proxy-companion", "traefik", "caddy", "nginxproxy/docker-gen"}

// repo returns an image reference without registry host, tag or digest:
// docker.io/library/postgres:16 → postgres.
func repo(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	parts := strings.Split(image, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		parts = parts[1:]
	}
	if len(parts) == 2 && parts[0] == "library" {
		parts = parts[1:]
	}
	return strings.Join(parts, "/")
}

func knownImage(image string) (port int, backup string, ok bool) {
	r := repo(image)
	for _, w := range wellKnown {
		if slices.Contains(w.names, r) {
			return w.port, w.backup, true
		}
	}
	return 0, "", false
}

func isProxyImage(image string) bool { return slices.Contains(proxyImages, repo(image)) }

func (m *mapper) run() (*Result, error) {
	p := m.p
	m.role, m.ext, m.names, m.mapped = map[string]string{}, map[string]*svcExt{}, map[string]string{}, map[string]*Mapped{}
	m.volName, m.volMount, m.volBy, m.accVols, m.svcVols = map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
	m.taskFiles = map[string][]string{}
	var top topExt
	if err := decodeExt(p.Extensions[extKey], &top); err != nil {
		m.errf(extKey, "%v; see docs/compose.md#x-moorage for its keys", err)
	}
	m.out = &outSpec{Runtime: spec.RuntimeDocker, Services: map[string]*outSvc{}}
	switch {
	case m.app != "":
		m.out.App = m.app
	case top.App != "":
		m.out.App = top.App
	default:
		m.out.App = appName(p.Name)
	}
	if len(p.Services) == 0 {
		m.errf("services", "the project has no service to deploy (with the profiles given: %s)", strings.Join(append([]string{}, p.Profiles...), ", "))
		return nil, &Error{m.errs}
	}
	names := sortedNames(p.Services)
	m.topLevelKeys()
	for _, n := range names {
		x := &svcExt{}
		if err := decodeExt(p.Services[n].Extensions[extKey], x); err != nil {
			m.errf("services."+n+"."+extKey, "%v; see docs/compose.md#x-moorage for its keys", err)
		}
		m.ext[n] = x
	}
	m.checkCycles(names)
	m.classify(names)
	m.checkKeys(names)
	m.artifact(names)
	m.releaseTasks(names, top)
	for _, n := range names {
		switch m.role[n] {
		case RoleService:
			m.service(n)
		case RoleAccessory:
			m.accessory(n)
		}
	}
	m.checkTaskFiles(names)
	m.env(names)
	m.secrets(names)
	m.links(names)
	m.topLevel(top)
	if len(m.out.Services) == 0 && len(m.errs) == 0 {
		m.errf("services", "no compose service becomes a moorage service (all are accessories, release tasks or skipped); an app needs at least one: set x-moorage: {role: service} on one")
	}
	if len(m.errs) > 0 {
		return nil, &Error{m.errs}
	}
	data, err := marshal(m.out, m.src.files)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Parse(SpecName, data)
	if err != nil {
		return nil, fmt.Errorf("the moorage spec written from the compose files is not valid (please report this, with the compose files):\n%w", err)
	}
	res := &Result{Dir: m.dir, YAML: data, Spec: sp, Warnings: m.warns}
	for _, n := range names {
		res.Services = append(res.Services, *m.mapped[n])
	}
	sort.SliceStable(res.Warnings, func(i, j int) bool {
		a, b := res.Warnings[i], res.Warnings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return res, nil
}

// topLevelKeys reports top-level compose keys moorage does not use.
func (m *mapper) topLevelKeys() {
	for _, k := range m.src.keys("") {
		switch {
		case k == "services" || k == "volumes" || k == "secrets" || k == "name" || k == extKey || strings.HasPrefix(k, "x-"):
		case k == "version":
			// obsolete in compose itself; nothing to say
		case k == "networks":
			m.warnf("networks", "not used: each moorage app gets one private network where accessories are reached by their name, and web traffic comes through moorage's proxy")
		case k == "configs":
			m.warnf("configs", "compose configs are not supported: ship config files in the project directory and bind-mount them (./conf:/path), which moorage copies into each release read-only")
		default:
			m.warnf(k, "not supported by moorage: ignored")
		}
	}
	for _, n := range sortedNames(m.p.Volumes) {
		v := m.p.Volumes[n]
		if v.External {
			m.warnf("volumes."+n+".external", "moorage creates and owns the app's volumes: an external volume's data is not used; copy it in with `moorage volume restore`")
		}
		if v.Driver != "" && v.Driver != "local" {
			m.warnf("volumes."+n+".driver", "volume driver %s is not supported: moorage volumes are local", v.Driver)
		}
	}
}

// dependents returns, for each service, the services that depend on it
// with the given condition.
func (m *mapper) completedBy(names []string) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		for dep, d := range m.p.Services[n].DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				out[dep] = append(out[dep], n)
			}
		}
	}
	return out
}

func (m *mapper) checkCycles(names []string) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		deps := sortedNames(m.p.Services[n].DependsOn)
		for _, d := range deps {
			if _, ok := m.p.Services[d]; !ok {
				continue
			}
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				cycle := append(append([]string{}, stack[i:]...), d)
				m.errf("services."+n+".depends_on."+d, "depends_on makes a cycle (%s): no order can start these services; remove one of the dependencies", strings.Join(cycle, " → "))
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range names {
		if color[n] == white && visit(n) {
			return
		}
	}
}

func (m *mapper) classify(names []string) {
	completed := m.completedBy(names)
	for _, n := range names {
		s := m.p.Services[n]
		x := m.ext[n]
		role := x.Role
		_, _, known := knownImage(s.Image)
		switch {
		case role == RoleService || role == RoleAccessory || role == RoleRelease || role == RoleSkip:
		case role != "":
			m.errf("services."+n+"."+extKey+".role", "%q is not a role: use service, accessory, release or skip", role)
			role = RoleSkip
		case len(completed[n]) > 0:
			role = RoleRelease
		case known && s.Build == nil:
			role = RoleAccessory
		case isProxyImage(s.Image) && s.Build == nil:
			role = RoleSkip
			m.mapped[n] = &Mapped{Compose: n, As: "skipped", Detail: fmt.Sprintf("%s is a reverse proxy; moorage's own proxy routes the web services and gets their certificates (VIRTUAL_HOST and LETSENCRYPT_HOST are read from them)", repo(s.Image))}
		default:
			role = RoleService
		}
		m.role[n] = role
		if role == RoleSkip && m.mapped[n] == nil {
			m.mapped[n] = &Mapped{Compose: n, As: "skipped", Detail: "x-moorage: {role: skip}"}
		}
		name := appName(n)
		m.names[n] = name
		if name != n && (role == RoleService || role == RoleAccessory) {
			if role == RoleAccessory {
				m.warnf("services."+n, "moorage names must be lower case with '-': the accessory is called %s, and that is its host name on the app's network: services that reach it as %q must use %q", name, n, name)
			} else {
				m.warnf("services."+n, "moorage names must be lower case with '-': the service is called %s", name)
			}
		}
	}
	// two compose names mapping to one moorage name
	seen := map[string]string{}
	for _, n := range names {
		if m.role[n] == RoleSkip || m.role[n] == RoleRelease {
			continue
		}
		if o, ok := seen[m.names[n]]; ok {
			m.errf("services."+n, "services %s and %s both become %s in moorage (names are lower case with '-'): rename one", o, n, m.names[n])
		}
		seen[m.names[n]] = n
	}
}
