// Which compose keys the mapper reads, ignores with a warning, or refuses.

package compose

import (
	"path/filepath"
	"strings"
)

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
