// Accessories, config and secrets, links, and the top-level x-moorage keys.

package compose

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
