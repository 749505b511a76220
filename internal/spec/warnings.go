package spec

import (
	"fmt"
	"path"
	"strings"
)

// Warnings lists settings of a valid spec that have no effect, such as
// docker-only knobs on the process runtime, one per line as "path: why".
// They are worth showing but do not make the spec invalid: one spec can be
// deployed on either runtime.
func (s *Spec) Warnings() []string {
	var out []string
	warn := func(p, format string, args ...any) {
		out = append(out, p+": "+fmt.Sprintf(format, args...))
	}
	if s.Runtime == RuntimeProcess {
		const ignored = "ignored by the process runtime"
		if b := s.Build; b != nil {
			if b.Dockerfile != "" {
				warn("build.dockerfile", ignored)
			}
			if b.Target != "" {
				warn("build.target", ignored)
			}
			if len(b.Args) > 0 {
				warn("build.args", ignored)
			}
		}
		for _, name := range sortedKeys(s.Services) {
			svc, p := s.Services[name], "services."+name
			if svc == nil {
				continue
			}
			if svc.Port != 0 {
				warn(p+".port", "%s: it picks a free port and passes it as $PORT", ignored)
			}
			if svc.ReadOnly {
				warn(p+".read_only", ignored)
			}
			if svc.Memory != 0 {
				warn(p+".memory", ignored)
			}
			if svc.CPUs != 0 {
				warn(p+".cpus", ignored)
			}
		}
		for _, name := range sortedKeys(s.Volumes) {
			v := s.Volumes[name]
			if v == nil || len(v.Services) == 0 || len(v.Services) >= len(s.Services) || !linkedIntoRelease(s, v) {
				continue
			}
			warn("volumes."+name+".services", "on the process runtime it only decides which services get $%s: the volume is linked at %s in the release directory, which every service shares", VolumeEnv(name), v.Mount)
		}
		for _, name := range sortedKeys(s.Accessories) {
			a, p := s.Accessories[name], "accessories."+name
			if a == nil {
				continue
			}
			if a.Image != "" {
				warn(p+".image", "%s: it runs command:", ignored)
			}
			if a.Memory != 0 {
				warn(p+".memory", ignored)
			}
			if a.CPUs != 0 {
				warn(p+".cpus", ignored)
			}
		}
	}
	if ContainerRuntime(s.Runtime) {
		pid1 := "ignored by the " + s.Runtime + " runtime: docker sends stop_signal to the container's main process (PID 1) only"
		for _, name := range sortedKeys(s.Services) {
			if svc := s.Services[name]; svc != nil && svc.StopGroup {
				warn("services."+name+".stop_group", "%s", pid1)
			}
		}
		for _, name := range sortedKeys(s.Accessories) {
			a := s.Accessories[name]
			if a == nil {
				continue
			}
			if a.StopGroup {
				warn("accessories."+name+".stop_group", "%s", pid1)
			}
			for i, v := range a.Volumes {
				q := index("accessories."+name+".volumes", i)
				switch {
				case strings.HasPrefix(v.Name, "./"):
					warn(q, "%s is mounted read-only, from a copy of the upload kept with each release (config files); what the accessory writes belongs in a named volume, e.g. \"%s-data:%s\"", v.Name, name, v.Path)
				case strings.HasPrefix(v.Name, "/"):
					warn(q, "host path %s is bind-mounted as it is: moorage does not manage its data (no volume backups, no ownership for the accessory's user); a named volume does", v.Name)
				}
			}
		}
	}
	if s.Runtime != RuntimeSwarm {
		ignored := "ignored by the " + s.Runtime + " runtime: placement chooses among the nodes of a swarm"
		for _, name := range sortedKeys(s.Services) {
			if svc := s.Services[name]; svc != nil && svc.Placement != nil {
				warn("services."+name+".placement", "%s", ignored)
			}
		}
		for _, name := range sortedKeys(s.Accessories) {
			if a := s.Accessories[name]; a != nil && a.Placement != nil {
				warn("accessories."+name+".placement", "%s", ignored)
			}
		}
	}
	if s.Runtime == RuntimeProcess {
		for _, name := range sortedKeys(s.Volumes) {
			if v := s.Volumes[name]; v != nil && (v.Driver != "" || len(v.DriverOpts) > 0) {
				warn("volumes."+name+".driver", "ignored by the process runtime: its volumes are directories under the data dir")
			}
		}
	}
	if s.Backups != nil {
		any := len(s.Volumes) > 0
		for _, a := range s.Accessories {
			if a != nil && a.Backup != "" {
				any = true
			}
		}
		if !any {
			warn("backups", "the app has no volume and no accessory with backup: postgres, so there is nothing to back up")
		}
	}
	return out
}

// linkedIntoRelease reports whether the process runtime links volume v into
// the release directory: its mount is under build.workdir.
func linkedIntoRelease(s *Spec, v *Volume) bool {
	wd := DefaultWorkdir
	if s.Build != nil && s.Build.Workdir != "" {
		wd = s.Build.Workdir
	}
	wd, m := path.Clean(wd), path.Clean(v.Mount)
	return wd == "/" || strings.HasPrefix(m, wd+"/")
}
