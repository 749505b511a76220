package compose

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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

// serviceKeys are the service keys moorage maps.
var serviceKeys = map[string]bool{
	"image": true, "build": true, "command": true, "entrypoint": true, "environment": true, "env_file": true,
	"healthcheck": true, "deploy": true, "scale": true, "ports": true, "expose": true, "volumes": true,
	"depends_on": true, "secrets": true, "stop_signal": true, "stop_grace_period": true, "user": true,
	"read_only": true, "profiles": true, extKey: true, "mem_limit": true, "cpus": true, "links": true,
	"extends": true, "network_mode": true, "privileged": true, "cap_add": true, "devices": true,
	"pid": true, "ipc": true,
}

// ignoredKeys are service keys moorage leaves out, and why.
var ignoredKeys = map[string]string{
	"restart":         "moorage supervises every instance itself: it restarts one that exits and watches each new release",
	"container_name":  "moorage names the instances; an accessory is reached by its service name",
	"networks":        "each app gets one private network; accessories are reached there by their name, web traffic comes through moorage's proxy",
	"labels":          "moorage sets its own labels",
	"logging":         "moorage keeps every instance's logs (`moorage logs`)",
	"hostname":        "each instance gets its own host name",
	"working_dir":     "the image's WORKDIR is used (build.workdir for the app's files)",
	"tty":             "instances run without a terminal",
	"stdin_open":      "instances run without standard input",
	"init":            "not supported",
	"extra_hosts":     "not supported: use DNS names",
	"dns":             "not supported",
	"dns_search":      "not supported",
	"tmpfs":           "not supported (with read_only, moorage mounts a tmpfs on /tmp)",
	"ulimits":         "not supported",
	"security_opt":    "not supported",
	"platform":        "the server's platform is used",
	"pull_policy":     "moorage pulls an image only when it is missing",
	"shm_size":        "not supported",
	"sysctls":         "not supported",
	"cap_drop":        "not supported: Docker's default capabilities apply",
	"develop":         "compose watch is for development",
	"attach":          "not used",
	"domainname":      "not supported",
	"mem_reservation": "not supported: use mem_limit or deploy.resources.limits.memory",
	"oom_score_adj":   "not supported",
	"userns_mode":     "not supported",
	"group_add":       "not supported",
}

func (m *mapper) checkKeys(names []string) {
	grouped := map[string][]string{}
	var order []string
	for _, n := range names {
		if m.role[n] == RoleSkip {
			continue
		}
		s := m.p.Services[n]
		base := "services." + n
		for _, k := range m.src.keys(base) {
			if serviceKeys[k] || strings.HasPrefix(k, "x-") {
				continue
			}
			if _, ok := ignoredKeys[k]; ok {
				if grouped[k] == nil {
					order = append(order, k)
				}
				grouped[k] = append(grouped[k], n)
				continue
			}
			m.warnf(base+"."+k, "not supported by moorage: ignored")
		}
		switch nm := s.NetworkMode; {
		case nm == "" || nm == "bridge" || nm == "default":
		case nm == "host":
			m.errf(base+".network_mode", "host networking is not supported: instances run on the app's private network, and the proxy reaches web services on their port; remove network_mode and publish the port the service listens on (ports: [\"8000\"])")
		default:
			m.errf(base+".network_mode", "network_mode %q is not supported: each instance has its own network namespace on the app's network; remove it", nm)
		}
		if s.Privileged {
			m.errf(base+".privileged", "privileged containers are not supported: they hold root on the server; remove it, and use cap_add-free images")
		}
		if len(s.CapAdd) > 0 {
			m.errf(base+".cap_add", "extra capabilities (%s) are not supported; remove cap_add", strings.Join(s.CapAdd, ", "))
		}
		if len(s.Devices) > 0 {
			m.errf(base+".devices", "host devices are not supported; remove devices")
		}
		if s.Pid == "host" {
			m.errf(base+".pid", "the host's process namespace is not supported; remove pid")
		}
		if s.Ipc == "host" || strings.HasPrefix(s.Ipc, "service:") || strings.HasPrefix(s.Ipc, "container:") {
			m.errf(base+".ipc", "a shared IPC namespace (%s) is not supported; remove ipc", s.Ipc)
		}
		if d := s.Deploy; d != nil {
			if d.RestartPolicy != nil {
				m.warnf(base+".deploy.restart_policy", "moorage restarts an instance that exits, always")
			}
			if d.UpdateConfig != nil {
				m.warnf(base+".deploy.update_config", "moorage's deploys start the new release beside the old one and cut over once it is healthy; see docs/deploy-semantics.md")
			}
			if d.RollbackConfig != nil {
				m.warnf(base+".deploy.rollback_config", "a failed deploy leaves the old release serving; `moorage rollback` goes back by hand")
			}
			if len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 {
				m.warnf(base+".deploy.placement", "moorage runs an app on one server: placement is ignored")
			}
			if d.Resources.Reservations != nil {
				m.warnf(base+".deploy.resources.reservations", "reservations are not supported; limits are")
			}
			if d.Mode == "global" {
				m.warnf(base+".deploy.mode", "global mode is one instance per node: on one server that is replicas: 1")
			}
		}
		for i, v := range s.Volumes {
			if isDockerSocket(v.Source) {
				m.errf(base+".volumes", "item %d mounts the Docker socket (%s): it gives root on the server, and moorage refuses it; remove the mount (moorage's proxy replaces proxies that read the socket)", i+1, v.Source)
			}
		}
	}
	for _, k := range order {
		ns := grouped[k]
		m.warnf("services."+ns[0]+"."+k, "ignored (services %s): %s", strings.Join(ns, ", "), ignoredKeys[k])
	}
}

func isDockerSocket(p string) bool {
	p = filepath.Clean(p)
	return strings.HasSuffix(p, "/docker.sock") || p == "/var/run" || p == "/run" || p == "/var/run/docker" || p == "/run/docker"
}

// artifact picks the one image or build every service and release task
// runs: moorage deploys one artifact per app.
func (m *mapper) artifact(names []string) {
	var builder, imager string // first service with build / with image only
	var build *types.BuildConfig
	var image string
	for _, n := range names {
		if r := m.role[n]; r != RoleService && r != RoleRelease {
			continue
		}
		s := m.p.Services[n]
		base := "services." + n
		if s.Build != nil {
			if build == nil {
				builder, build = n, s.Build
				if s.Image != "" {
					image = s.Image
				}
				continue
			}
			if !sameBuild(build, s.Build) {
				m.errf(base+".build", "builds differently from service %s: moorage deploys one image per app, which every service and release task runs; make the builds the same (use command: to vary what runs), or deploy this service as another app", builder)
			}
			continue
		}
		if s.Image == "" {
			m.errf(base, "has neither image nor build")
			continue
		}
		if build != nil && s.Image == image {
			continue
		}
		if imager == "" && build == nil {
			imager, image = n, s.Image
			continue
		}
		if s.Image != image {
			other := imager
			if other == "" {
				other = builder
			}
			m.errf(base+".image", "runs %s while service %s runs %s: moorage deploys one image per app, which every service and release task runs; if %s is a database or cache, mark it x-moorage: {role: accessory}, else deploy it as another app", s.Image, other, image, n)
		}
	}
	// services with image only, seen before the build, must name its image
	if build != nil && imager != "" && image != m.p.Services[imager].Image {
		m.errf("services."+imager+".image", "runs %s while service %s builds its own image: moorage deploys one image per app; give %s the same build, or set image: on %s to %s", m.p.Services[imager].Image, builder, imager, builder, m.p.Services[imager].Image)
	}
	if build == nil {
		if image != "" {
			m.out.Image = image
		}
		return
	}
	base := "services." + builder + ".build"
	ctx := build.Context
	if ctx == "" {
		ctx = m.dir
	}
	if !filepath.IsAbs(ctx) {
		ctx = filepath.Join(m.dir, ctx)
	}
	if strings.Contains(build.Context, "://") {
		m.errf(base+".context", "a remote build context (%s) is not supported: moorage builds from the uploaded project directory", build.Context)
		return
	}
	if rel, err := filepath.Rel(m.dir, ctx); err != nil || rel != "." {
		m.errf(base+".context", "moorage uploads the project directory (%s) and builds from its root; the context %s is elsewhere: put the compose file in the build context, or set context: .", m.dir, build.Context)
	}
	if build.DockerfileInline != "" {
		m.errf(base+".dockerfile_inline", "inline Dockerfiles are not supported: write it to a file in the project and set dockerfile:")
	}
	b := &outBuild{Target: build.Target}
	if build.Dockerfile != "" && build.Dockerfile != "Dockerfile" {
		b.Dockerfile = filepath.ToSlash(build.Dockerfile)
	}
	for _, k := range sortedNames(build.Args) {
		v := build.Args[k]
		if v == nil {
			m.warnf(base+".args", "build arg %s has no value in the environment: left out", k)
			continue
		}
		if b.Args == nil {
			b.Args = map[string]string{}
		}
		b.Args[k] = *v
	}
	for _, k := range []string{"ssh", "secrets", "additional_contexts", "cache_from", "cache_to", "platforms", "network", "extra_hosts", "tags", "labels", "pull", "no_cache", "shm_size", "isolation", "privileged", "entitlements", "ulimits"} {
		if slices.Contains(m.src.keys(base), k) {
			m.warnf(base+"."+k, "not supported in moorage's build: ignored")
		}
	}
	m.out.Build = b
}

func sameBuild(a, b *types.BuildConfig) bool {
	if a.Context != b.Context || a.Dockerfile != b.Dockerfile || a.Target != b.Target || len(a.Args) != len(b.Args) {
		return false
	}
	for k, v := range a.Args {
		w, ok := b.Args[k]
		if !ok || (v == nil) != (w == nil) || (v != nil && *v != *w) {
			return false
		}
	}
	return true
}

// command is what a compose service runs: entrypoint then command. It
// reports whether an entrypoint was set.
func command(s types.ServiceConfig) []string {
	var out []string
	out = append(out, s.Entrypoint...)
	out = append(out, s.Command...)
	return out
}

func (m *mapper) warnEntrypoint(n string) {
	if len(m.p.Services[n].Entrypoint) > 0 {
		m.warnf("services."+n+".entrypoint", "moorage has no entrypoint override: the entrypoint is put in front of the command, and the image's own ENTRYPOINT (if it has one) still runs first")
	}
}

// releaseTasks turns the one-shot services others wait for into release
// tasks, in dependency order.
func (m *mapper) releaseTasks(names []string, top topExt) {
	var tasks []string
	done := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range sortedNames(m.p.Services[n].DependsOn) {
			if m.role[d] == RoleRelease {
				visit(d)
			}
		}
		tasks = append(tasks, n)
	}
	for _, n := range names {
		if m.role[n] == RoleRelease {
			visit(n)
		}
	}
	for i, n := range tasks {
		s := m.p.Services[n]
		base := "services." + n
		cmd := command(s)
		if len(cmd) == 0 {
			m.errf(base, "is a release task (others wait for it with condition: service_completed_successfully) but has no command: write the command it runs (command: ./manage.py migrate)")
			continue
		}
		m.warnEntrypoint(n)
		t := outTask{Command: cmd}
		if d, err := duration(m.ext[n].Timeout); err != nil {
			m.errf(base+"."+extKey+".timeout", "%v", err)
		} else {
			t.Timeout = fmtDuration(d)
		}
		if s.GetScale() > 1 {
			m.warnf(base+".deploy.replicas", "a release task runs once per deploy: replicas ignored")
		}
		if len(s.Ports) > 0 {
			m.warnf(base+".ports", "a release task is not routed: ports ignored")
		}
		for _, v := range s.Volumes {
			m.taskFiles[n] = append(m.taskFiles[n], m.volume(n, v, false)...)
		}
		m.out.Release = append(m.out.Release, t)
		why := "x-moorage: {role: release}"
		if by := m.completedBy(names)[n]; len(by) > 0 {
			why = "waited for by " + strings.Join(by, ", ")
		}
		m.mapped[n] = &Mapped{Compose: n, As: "release task", Name: n, Detail: fmt.Sprintf("%d of %d, once per deploy before traffic moves (%s): %s", i+1, len(tasks), why, shellJoin(cmd))}
	}
	for i, c := range top.Release {
		cmd, err := spec.SplitCommand(c)
		if err != nil {
			m.errf(extKey+".release", "item %d: %v", i+1, err)
			continue
		}
		m.out.Release = append(m.out.Release, outTask{Command: cmd})
	}
	for i, c := range top.Checks {
		cmd, err := spec.SplitCommand(c)
		if err != nil {
			m.errf(extKey+".checks", "item %d: %v", i+1, err)
			continue
		}
		m.out.Checks = append(m.out.Checks, outTask{Command: cmd})
	}
}

func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

var beatRe = regexp.MustCompile(`\bbeat\b`)

func (m *mapper) service(n string) {
	s := m.p.Services[n]
	x := m.ext[n]
	base := "services." + n
	name := m.names[n]
	o := &outSvc{}
	var detail []string
	if cmd := command(s); len(cmd) > 0 {
		o.Command = cmd
		m.warnEntrypoint(n)
	}
	if sc := s.GetScale(); s.Scale != nil || (s.Deploy != nil && s.Deploy.Replicas != nil) {
		o.Replicas = &sc
	}
	replicas := 1
	if o.Replicas != nil {
		replicas = *o.Replicas
	}
	// routing
	var routedPort int
	var published []string
	for _, p := range s.Ports {
		if p.Protocol != "" && p.Protocol != "tcp" {
			m.warnf(base+".ports", "%s port %d: only TCP (HTTP) is routed, by moorage's proxy; ignored", p.Protocol, p.Target)
			continue
		}
		if routedPort == 0 {
			routedPort = int(p.Target)
			if p.Published != "" {
				published = append(published, p.Published)
			}
			continue
		}
		m.warnf(base+".ports", "port %d: moorage's proxy routes one port per service (%d); ignored", p.Target, routedPort)
	}
	vhost := s.Environment["VIRTUAL_HOST"]
	lehost := s.Environment["LETSENCRYPT_HOST"]
	if x.HTTP != nil || routedPort > 0 || vhost != nil {
		h := &outHTTP{}
		if x.HTTP != nil {
			h.Hosts, h.TLS, h.Canonical, h.Path, h.MaxBody = x.HTTP.Hosts, x.HTTP.TLS, x.HTTP.Canonical, x.HTTP.Path, x.HTTP.MaxBody
			if x.HTTP.HSTS != nil {
				h.HSTS = *x.HTTP.HSTS
			}
			if d, err := duration(x.HTTP.HoldTimeout); err != nil {
				m.errf(base+"."+extKey+".http.hold_timeout", "%v", err)
			} else {
				h.HoldTimeout = fmtDuration(d)
			}
		}
		if len(h.Hosts) == 0 && vhost != nil && *vhost != "" {
			h.Hosts = splitHosts(*vhost)
			if lehost != nil && *lehost != "" && h.TLS == "" {
				h.TLS = spec.TLSAuto
			}
			detail = append(detail, "hosts from VIRTUAL_HOST")
		}
		if d, err := duration(x.DrainTimeout); err != nil {
			m.errf(base+"."+extKey+".drain_timeout", "%v", err)
		} else {
			h.DrainTimeout = fmtDuration(d)
		}
		o.HTTP = h
		if routedPort == 0 {
			if vp := s.Environment["VIRTUAL_PORT"]; vp != nil {
				routedPort, _ = strconv.Atoi(*vp)
			}
		}
		if routedPort == 0 && len(s.Expose) > 0 {
			routedPort, _ = strconv.Atoi(strings.Split(s.Expose[0], "/")[0])
		}
	}
	if x.Port > 0 {
		routedPort = x.Port
	}
	if routedPort > 0 {
		o.Port = routedPort
	}
	if o.HTTP != nil {
		d := fmt.Sprintf("routed by moorage's proxy to port %d", o.Port)
		if o.Port == 0 {
			d = fmt.Sprintf("routed by moorage's proxy to port %d (the default; set x-moorage: {port: N})", spec.DefaultDockerPort)
		}
		if len(published) > 0 {
			d += fmt.Sprintf(" (the proxy takes over published port %s)", strings.Join(published, ", "))
		}
		if len(o.HTTP.Hosts) > 0 {
			d += " for " + strings.Join(o.HTTP.Hosts, ", ")
		}
		detail = append([]string{d}, detail...)
	} else if name == "web" {
		// moorage routes a service named web by default; compose's web
		// without ports is not reachable from outside
		m.warnf(base, "a moorage service named web is routed on the default route; this one publishes no port, so it will answer through moorage's proxy on port %d: publish its port (ports: [\"8000\"]) or set x-moorage: {port: N}", spec.DefaultDockerPort)
	}
	detail = append(detail, fmt.Sprintf("%d replica%s", replicas, plural(replicas)))
	// singleton
	if x.Singleton != nil {
		o.Singleton = *x.Singleton
	} else if cmd := strings.Join(command(s), " "); strings.Contains(cmd, "celery") && beatRe.MatchString(cmd) && replicas <= 1 {
		o.Singleton = true
		detail = append(detail, "singleton (celery beat must never run twice; x-moorage: {singleton: false} turns this off)")
	}
	if o.Singleton && x.Singleton != nil {
		detail = append(detail, "singleton")
	}
	if o.Singleton && replicas > 1 {
		m.errf(base+".deploy.replicas", "a singleton runs at most one instance: set replicas to 1")
	}
	o.Health = m.health(base, s.HealthCheck)
	if o.Health != nil {
		detail = append(detail, "health: the compose healthcheck gates it")
	}
	if d, err := duration(x.MinReady); err != nil {
		m.errf(base+"."+extKey+".min_ready", "%v", err)
	} else {
		o.MinReady = fmtDuration(d)
	}
	if o.HTTP == nil && x.DrainTimeout != "" {
		m.errf(base+"."+extKey+".drain_timeout", "only routed services drain requests; this one is not routed")
	}
	o.StopSignal = s.StopSignal
	if s.StopGracePeriod != nil {
		o.StopTimeout = fmtDuration(time.Duration(*s.StopGracePeriod))
		if o.StopTimeout == "" {
			o.StopTimeout = "0"
		}
	}
	o.User, o.ReadOnly = s.User, s.ReadOnly
	if isRoot(s.User) {
		o.AllowRoot = true
		m.warnf(base+".user", "runs as root, as the compose file says: allow_root: true is set; prefer a non-root user")
	}
	if x.AllowRoot {
		o.AllowRoot = true
	}
	o.Memory, o.CPUs = m.limits(s)
	for _, v := range s.Volumes {
		o.Files = append(o.Files, m.volume(n, v, false)...)
	}
	if len(o.Files) > 0 {
		detail = append(detail, "files "+strings.Join(o.Files, ", ")+" (read-only, copied with each release)")
	}
	m.out.Services[name] = o
	m.mapped[n] = &Mapped{Compose: n, As: "service", Name: name, Detail: strings.Join(detail, ", ")}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func splitHosts(s string) []string {
	var out []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func isRoot(u string) bool {
	return u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:")
}

func (m *mapper) limits(s types.ServiceConfig) (mem, cpus string) {
	var bytes int64 = int64(s.MemLimit)
	c := float64(s.CPUS)
	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		if l := s.Deploy.Resources.Limits; l.MemoryBytes > 0 {
			bytes = int64(l.MemoryBytes)
		}
		if l := s.Deploy.Resources.Limits; l.NanoCPUs > 0 {
			c = float64(l.NanoCPUs)
		}
	}
	if bytes > 0 {
		mem = strconv.FormatInt(bytes, 10)
	}
	if c > 0 {
		cpus = strconv.FormatFloat(c, 'f', -1, 32)
	}
	return mem, cpus
}

// health maps a compose healthcheck.
func (m *mapper) health(base string, hc *types.HealthCheckConfig) *outHealth {
	if hc == nil || hc.Disable || len(hc.Test) == 0 {
		return nil
	}
	var cmd []string
	switch hc.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test, " ")}
	}
	if len(cmd) == 0 {
		m.errf(base+".healthcheck.test", "has no command")
		return nil
	}
	h := &outHealth{Command: cmd}
	if hc.Interval != nil {
		h.Interval = fmtDuration(time.Duration(*hc.Interval))
	}
	if hc.Timeout != nil {
		h.Timeout = fmtDuration(time.Duration(*hc.Timeout))
	}
	if hc.StartPeriod != nil {
		h.StartPeriod = fmtDuration(time.Duration(*hc.StartPeriod))
		if h.StartPeriod == "" {
			h.StartPeriod = "0"
		}
	}
	if hc.Retries != nil && *hc.Retries > 0 {
		h.Retries = int(*hc.Retries)
	}
	if hc.StartInterval != nil {
		m.warnf(base+".healthcheck.start_interval", "not supported: interval applies from the start")
	}
	return h
}

// volume maps one mount of compose service n.
func (m *mapper) volume(n string, v types.ServiceVolumeConfig, accessory bool) []string {
	base := "services." + n + ".volumes"
	switch v.Type {
	case types.VolumeTypeVolume:
		if v.Source == "" {
			m.warnf(base, "anonymous volume at %s: its data would be lost on every deploy, so it is not mounted; name it (data:%s) to keep the data", v.Target, v.Target)
			return nil
		}
		if accessory {
			if o, ok := m.svcVols[v.Source]; ok {
				m.errf(base, "volume %s is mounted by the accessory %s and by service %s: an accessory's data is its own; give them separate volumes", v.Source, n, o)
				return nil
			}
			m.accVols[v.Source] = n
			return []string{appName(v.Source) + ":" + v.Target}
		}
		if o, ok := m.accVols[v.Source]; ok {
			m.errf(base, "volume %s is mounted by the accessory %s and by service %s: an accessory's data is its own; give them separate volumes", v.Source, o, n)
			return nil
		}
		m.svcVols[v.Source] = n
		if v.ReadOnly {
			m.warnf(base, "volume %s: read-only mounts of named volumes are not supported; it is mounted read-write", v.Source)
		}
		m.addVolume(n, appName(v.Source), v.Target)
		return nil
	case types.VolumeTypeBind:
		src := v.Source
		if isDockerSocket(src) {
			return nil // an error already
		}
		rel, err := filepath.Rel(m.dir, src)
		local := err == nil && filepath.IsLocal(rel)
		switch {
		case err == nil && rel == ".":
			m.errf(base, "bind-mounts the whole project directory at %s (a development setup): moorage runs the image it builds from the project; leave this mount to a development overlay file that you do not pass to moorage", v.Target)
			return nil
		case !local && accessory:
			m.warnf(base, "host path %s is bind-mounted as it is: moorage does not manage its data (no volume backups); a named volume does", src)
			return []string{src + ":" + v.Target}
		case !local:
			m.errf(base, "host path %s is outside the project directory: services get named volumes, or a read-only copy of a directory of the project (./dir:%s); use one of those", src, v.Target)
			return nil
		}
		from := "./" + filepath.ToSlash(rel)
		if !v.ReadOnly {
			what := "accessory"
			if !accessory {
				what = "service"
			}
			m.warnf(base, "%s is mounted read-only, from a copy of the project kept with each release; what the %s writes there belongs in a named volume", from, what)
		}
		return []string{from + ":" + v.Target}
	case types.VolumeTypeTmpfs:
		m.warnf(base, "tmpfs at %s is not supported: ignored", v.Target)
	default:
		m.warnf(base, "%s mounts are not supported: ignored", v.Type)
	}
	return nil
}

// checkTaskFiles: release tasks get every service's files (moorage's
// rule), so a project directory a release task mounts must be mounted,
// at the same path, by a service; and two services must not put two
// directories at one path.
func (m *mapper) checkTaskFiles(names []string) {
	at := map[string]string{} // target → "./dir"
	by := map[string]string{}
	for _, n := range sortedNames(m.out.Services) {
		for _, f := range m.out.Services[n].Files {
			from, target, _ := strings.Cut(f, ":")
			if o, ok := at[target]; ok && o != from {
				m.errf("services."+n+".volumes", "mounts %s at %s, where %s mounts %s: moorage gives release tasks every service's project directories, so one path holds one directory; use the same directory or another path", from, target, by[target], o)
				continue
			}
			at[target], by[target] = from, n
		}
	}
	for _, n := range names {
		for _, f := range m.taskFiles[n] {
			from, target, _ := strings.Cut(f, ":")
			if at[target] != from {
				m.errf("services."+n+".volumes", "the release task mounts %s at %s, and no service does: moorage gives release tasks the project directories its services mount; mount it on a service too, or COPY it into the image", from, target)
			}
		}
	}
}

// addVolume records that compose service n mounts the moorage volume name
// at target.
func (m *mapper) addVolume(n, name, target string) {
	base := "services." + n + ".volumes"
	if m.out.Volumes == nil {
		m.out.Volumes = map[string]*outVolume{}
	}
	v := m.out.Volumes[name]
	if v == nil {
		v = &outVolume{Mount: target}
		m.out.Volumes[name] = v
		m.volBy[name] = n
	} else if v.Mount != target {
		m.errf(base, "volume %s is mounted at %s here and at %s by %s: a moorage volume has one mount path for every service; use the same path", name, target, v.Mount, m.volBy[name])
		return
	}
	svc := m.names[n]
	if m.role[n] == RoleRelease {
		return // release tasks get every volume
	}
	if !slices.Contains(v.Services, svc) {
		v.Services = append(v.Services, svc)
		sort.Strings(v.Services)
	}
}

func (m *mapper) accessory(n string) {
	s := m.p.Services[n]
	x := m.ext[n]
	base := "services." + n
	name := m.names[n]
	if s.Build != nil {
		m.errf(base+".build", "an accessory runs a prebuilt image, and this one has build: set image: to an image on the server, or x-moorage: {role: service}")
		return
	}
	if s.Image == "" {
		m.errf(base, "an accessory needs an image")
		return
	}
	a := &outAccess{Image: s.Image}
	port, backup, _ := knownImage(s.Image)
	if len(s.Expose) > 0 {
		port, _ = strconv.Atoi(strings.Split(s.Expose[0], "/")[0])
	}
	for _, p := range s.Ports {
		if port == 0 {
			port = int(p.Target)
		}
		if p.Published != "" {
			m.warnf(base+".ports", "an accessory's port is not published on the server: services reach it at %s:%d on the app's network (and get MOORAGE_ACCESSORY_%s_ADDR)", name, p.Target, strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		}
	}
	if x.Port > 0 {
		port = x.Port
	}
	if port == 0 {
		m.errf(base, "an accessory needs the port it listens on: add expose: [\"PORT\"] or x-moorage: {port: PORT}")
	}
	a.Port = port
	if x.Backup != nil {
		backup = *x.Backup
	}
	a.Backup = backup
	if cmd := command(s); len(cmd) > 0 {
		a.Command = cmd
		m.warnEntrypoint(n)
	}
	for _, k := range sortedNames(s.Environment) {
		v := s.Environment[k]
		if v == nil {
			m.warnf(base+".environment", "%s has no value: left out", k)
			continue
		}
		if a.Env == nil {
			a.Env = map[string]string{}
		}
		a.Env[k] = literalEnv(*v)
	}
	a.Health = m.health(base, s.HealthCheck)
	for _, v := range s.Volumes {
		a.Volumes = append(a.Volumes, m.volume(n, v, true)...)
	}
	a.StopSignal = s.StopSignal
	if s.StopGracePeriod != nil {
		a.StopTimeout = fmtDuration(time.Duration(*s.StopGracePeriod))
	}
	a.User = s.User
	a.Memory, a.CPUs = m.limits(s)
	if s.GetScale() > 1 {
		m.warnf(base+".deploy.replicas", "an accessory runs one instance: replicas ignored")
	}
	if s.ReadOnly {
		m.warnf(base+".read_only", "not supported for accessories: ignored")
	}
	if x.Singleton != nil || x.HTTP != nil || x.DrainTimeout != "" {
		m.errf(base+"."+extKey, "singleton, http and drain_timeout are for services; this is an accessory")
	}
	if m.out.Accessories == nil {
		m.out.Accessories = map[string]*outAccess{}
	}
	m.out.Accessories[name] = a
	detail := fmt.Sprintf("%s on port %d, never restarted by app deploys", s.Image, port)
	if len(a.Volumes) == 0 {
		detail += ", no volume (its data does not survive a restart)"
	}
	if backup != "" {
		detail += ", backup: " + backup
	}
	if a.Health != nil {
		detail += ", health: the compose healthcheck"
	}
	m.mapped[n] = &Mapped{Compose: n, As: "accessory", Name: name, Detail: detail}
}

// env sets the environment: what every service and task shares goes to
// the top level, the rest to each service.
func (m *mapper) env(names []string) {
	envs := map[string]map[string]string{}
	var users []string
	for _, n := range names {
		r := m.role[n]
		if r != RoleService && r != RoleRelease {
			continue
		}
		s := m.p.Services[n]
		e := map[string]string{}
		for _, k := range sortedNames(s.Environment) {
			v := s.Environment[k]
			key := "services." + n + ".environment"
			switch {
			case v == nil:
				m.warnf(key, "%s has no value (not in the environment or .env): left out; set it with `moorage config set %s=...`", k, k)
				continue
			case k == "PORT" || strings.HasPrefix(k, "MOORAGE_"):
				m.warnf(key, "%s is set by moorage (the port the service listens on, or moorage's own variables): the compose value %q is left out", k, *v)
				continue
			case k == "VIRTUAL_HOST" || k == "VIRTUAL_PORT" || k == "LETSENCRYPT_HOST" || k == "LETSENCRYPT_EMAIL":
				// read for routing; still passed on, they do no harm
			}
			if !envKey.MatchString(k) {
				m.errf(key, "%s is not a variable name moorage accepts ([A-Za-z_][A-Za-z0-9_]*): rename it", k)
				continue
			}
			e[k] = literalEnv(*v)
		}
		envs[n] = e
		users = append(users, n)
	}
	if len(users) == 0 {
		return
	}
	common := map[string]string{}
	for k, v := range envs[users[0]] {
		all := true
		for _, u := range users[1:] {
			if w, ok := envs[u][k]; !ok || w != v {
				all = false
				break
			}
		}
		if all {
			common[k] = v
		}
	}
	if len(common) > 0 {
		m.out.Env = common
	}
	for _, n := range users {
		own := map[string]string{}
		for k, v := range envs[n] {
			if _, ok := common[k]; !ok {
				own[k] = v
			}
		}
		if len(own) == 0 {
			continue
		}
		if m.role[n] == RoleRelease {
			keys := sortedNames(own)
			m.warnf("services."+n+".environment", "release tasks get the app's shared environment only; %s (set on this service alone) is left out: set it on every service, or in the task's command", strings.Join(keys, ", "))
			continue
		}
		m.out.Services[m.names[n]].Env = own
	}
}

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretEnv is the variable a compose secret becomes.
func secretEnv(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "_" + s
	}
	return s
}

func (m *mapper) secrets(names []string) {
	seen := map[string]bool{}
	for _, n := range names {
		r := m.role[n]
		if r == RoleSkip {
			continue
		}
		for _, ref := range m.p.Services[n].Secrets {
			env := secretEnv(ref.Source)
			if r == RoleAccessory {
				a := m.out.Accessories[m.names[n]]
				if a != nil && !slices.Contains(a.Secrets, env) {
					a.Secrets = append(a.Secrets, env)
				}
			} else if !seen[env] {
				seen[env] = true
				m.out.Secrets = append(m.out.Secrets, env)
			}
			target := ref.Target
			if target == "" {
				target = "/run/secrets/" + ref.Source
			}
			how := ""
			if def, ok := m.p.Secrets[ref.Source]; ok && def.File != "" {
				f := def.File
				if rel, err := filepath.Rel(m.dir, f); err == nil && filepath.IsLocal(rel) {
					f = "./" + filepath.ToSlash(rel)
				}
				how = fmt.Sprintf(" < %s", f)
			}
			m.warnf("services."+n+".secrets", "secret %s becomes the moorage secret %s: the %s gets it as the variable $%s, not as the file %s; set it once with `moorage config set --secret %s%s`", ref.Source, env, map[bool]string{true: "accessory", false: "app"}[r == RoleAccessory], env, target, env, how)
		}
	}
	if m.out.Env != nil {
		for _, s := range m.out.Secrets {
			delete(m.out.Env, s)
		}
	}
}

func (m *mapper) links(names []string) {
	for _, n := range names {
		if m.role[n] == RoleSkip {
			continue
		}
		for _, l := range m.p.Services[n].Links {
			target, alias, _ := strings.Cut(l, ":")
			key := "services." + n + ".links"
			switch {
			case m.role[target] != RoleAccessory:
				m.errf(key, "links to %s, a %s: moorage gives host names on the app's network to accessories only; services reach each other through the proxy (a routed service's host) or a queue", target, m.roleName(target))
			case alias != "" && alias != target:
				m.errf(key, "the alias %s of %s: an accessory's only host name is its name, %s; use %s where the service is configured, and remove the link", alias, target, m.names[target], m.names[target])
			default:
				m.warnf(key, "not needed: every service reaches the accessory %s by its name on the app's network; ignored", m.names[target])
			}
		}
	}
}

func (m *mapper) roleName(n string) string {
	switch m.role[n] {
	case RoleRelease:
		return "release task"
	case RoleSkip:
		return "skipped service"
	case "":
		return "service that is not in the project"
	}
	return m.role[n]
}

// topLevel applies the top-level x-moorage settings.
func (m *mapper) topLevel(top topExt) {
	key := extKey
	if len(top.Hosts) > 0 || top.TLS != "" || top.Canonical != "" || top.HSTS != nil {
		var routed []string
		for _, n := range sortedNames(m.out.Services) {
			if m.out.Services[n].HTTP != nil {
				routed = append(routed, n)
			}
		}
		target := ""
		switch {
		case len(routed) == 1:
			target = routed[0]
		case slices.Contains(routed, "web"):
			target = "web"
		case len(routed) == 0:
			m.errf(key, "hosts, tls, canonical and hsts apply to the routed service, and none is routed: publish a port on the web service (ports: [\"8000\"])")
		default:
			m.errf(key, "hosts, tls, canonical and hsts apply to one routed service, and there are several (%s): set them per service, under x-moorage: {http: ...}", strings.Join(routed, ", "))
		}
		if h := m.out.Services[target]; target != "" {
			if len(top.Hosts) > 0 {
				h.HTTP.Hosts = top.Hosts
			}
			if top.TLS != "" {
				h.HTTP.TLS = top.TLS
			}
			if top.Canonical != "" {
				h.HTTP.Canonical = top.Canonical
			}
			if top.HSTS != nil {
				h.HTTP.HSTS = *top.HSTS
			}
			for _, n := range sortedNames(m.mapped) {
				if mp := m.mapped[n]; mp.As == "service" && mp.Name == target {
					mp.Detail += fmt.Sprintf(", hosts %s (tls %s) from x-moorage", strings.Join(h.HTTP.Hosts, ", "), orDefault(h.HTTP.TLS, "off"))
				}
			}
		}
	}
	d := &outDeploy{KeepReleases: top.KeepReleases}
	for _, f := range []struct {
		key string
		in  string
		out *string
	}{{"monitor", top.Monitor, &d.Monitor}, {"drain_timeout", top.DrainTimeout, &d.DrainTimeout}, {"release_timeout", top.ReleaseTimeout, &d.ReleaseTimeout}, {"keep_warm", top.KeepWarm, &d.KeepWarm}} {
		v, err := duration(f.in)
		if err != nil {
			m.errf(key+"."+f.key, "%v", err)
			continue
		}
		*f.out = fmtDuration(v)
		if f.in != "" && v == 0 {
			*f.out = "0"
		}
	}
	if *d != (outDeploy{}) {
		m.out.Deploy = d
	}
	if top.Backups != nil {
		m.out.Backups = &outBackups{Schedule: top.Backups.Schedule, Keep: top.Backups.Keep}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// literalEnv is a compose environment value as moorage's spec writes it:
// compose has already interpolated it (its $$ became $), so every $ left is
// literal, and doubled, or moorage would expand it ($PORT) or refuse it.
func literalEnv(v string) string { return strings.ReplaceAll(v, "$", "$$") }
