// Checks of ${VAR} references in env values: which names each kind of
// instance can refer to.

package spec

import (
	"slices"
	"strings"
)

// checkEnvRefs checks that every $NAME in env's values is a variable
// moorage sets for who (the instances that get env): those expand; any
// other would be taken literally, which is never what was meant.
func (d *decoder) checkEnvRefs(p string, env map[string]string, vars envVars, who string) {
	for _, k := range sortedKeys(env) {
		q := join(p, k)
		refs, bad := EnvValueRefs(env[k])
		if bad != "" {
			d.fail(q, false, "%s; write $$ for a literal $", bad)
			continue
		}
		for _, r := range refs {
			if vars.has(r) {
				continue
			}
			hint := "moorage expands only its own variables in env values (for " + who + ": " + vars.list() + ")"
			switch {
			case strings.HasPrefix(r, "MOORAGE_VOLUME_"):
				hint = "it is not a volume " + who + " mounts; " + hint
			case r == "PORT":
				hint = "the instances that get this env have no port; " + hint
			case r == "MOORAGE_RELEASE":
				hint = "accessories outlive releases; " + hint
			}
			d.fail(q, false, "$%s would be taken literally: %s; write $$ for a literal $", r, hint)
			break
		}
	}
}

// appEnvVars are the variables the top-level env can use: those every
// service and release task gets.
func appEnvVars(s *Spec) envVars {
	ev := envVars{port: true, release: true, volumes: map[string]bool{}, accessed: accessoryVars(s)}
	for _, v := range s.Volumes {
		if v == nil {
			continue
		}
		all := true
		for name := range s.Services {
			if !slices.Contains(s.VolumesFor(name), v) {
				all = false
			}
		}
		if all {
			ev.volumes[VolumeEnv(v.Name)] = true
		}
	}
	return ev
}

func serviceEnvVars(s *Spec, name string, svc *Service) envVars {
	ev := envVars{port: s.Runtime == RuntimeProcess || svc.Port > 0, release: true, volumes: map[string]bool{}, accessed: accessoryVars(s)}
	for _, v := range s.VolumesFor(name) {
		ev.volumes[VolumeEnv(v.Name)] = true
	}
	return ev
}

func accessoryEnvVars(s *Spec, a *Accessory) envVars {
	ev := envVars{port: true, appDir: s.Runtime == RuntimeProcess, volumes: map[string]bool{}}
	for _, m := range a.Volumes {
		if !strings.HasPrefix(m.Name, "/") && !strings.HasPrefix(m.Name, ".") {
			ev.volumes[VolumeEnv(m.Name)] = true
		}
	}
	return ev
}

func accessoryVars(s *Spec) map[string]bool {
	out := map[string]bool{}
	for name := range s.Accessories {
		p := "MOORAGE_ACCESSORY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		out[p+"_HOST"], out[p+"_PORT"], out[p+"_ADDR"] = true, true, true
	}
	return out
}
