// Compose services as moorage services: command, replicas, routing, health, volumes.

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
			if cv := m.p.Volumes[v.Source]; len(cv.DriverOpts) > 0 && !bool(cv.External) {
				m.warnf(base, "volume %s: driver_opts are not used for an accessory's volume, which is a local volume where the accessory runs (pinned to one node on swarm)", v.Source)
			}
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
		m.volumeDriver(v.Source)
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

// volumeDriver carries the local driver's options of the compose volume
// source (shared storage such as NFS, or a bind of a directory every node
// has) to the moorage volume: the swarm runtime creates the volume with
// them on each node that runs a task mounting it, so that instances on
// several nodes share its data.
func (m *mapper) volumeDriver(source string) {
	cv, ok := m.p.Volumes[source]
	ov := m.out.Volumes[appName(source)]
	if !ok || ov == nil || bool(cv.External) || (cv.Driver != "" && cv.Driver != "local") || len(cv.DriverOpts) == 0 {
		return // another driver: warned about (topLevelKeys)
	}
	ov.Driver = "local"
	ov.DriverOpts = map[string]string{}
	for k, v := range cv.DriverOpts {
		ov.DriverOpts[k] = v
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
