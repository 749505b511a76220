package runtime

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/moorage/moorage/internal/spec"
)

// Expand replaces $VAR and ${VAR} in each argument with env's value (empty
// when unset). "$$" is a literal "$". No word splitting happens: one
// argument stays one argument.
func Expand(argv []string, env map[string]string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(a, "$$", "\x00")
		a = os.Expand(a, func(k string) string { return env[k] })
		out[i] = strings.ReplaceAll(a, "\x00", "$")
	}
	return out
}

// Refs returns the variable names argv refers to as $NAME or ${NAME}, the
// ones Expand would replace, in order, each once ("$$" is no reference).
func Refs(argv []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range argv {
		a = strings.ReplaceAll(a, "$$", "\x00")
		os.Expand(a, func(k string) string {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
			return ""
		})
	}
	return out
}

// ExpandEnv returns env with $NAME and ${NAME} in each value replaced by
// vars' value (empty when vars has none) and "$$" by "$", as Expand does
// for arguments. The spec refuses env values that refer to anything but
// the variables moorage sets (spec.EnvValueRefs); values meant literally
// (config values, secrets) reach it through EscapeEnv.
func ExpandEnv(env, vars map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		if strings.IndexByte(v, '$') < 0 {
			out[k] = v
			continue
		}
		out[k] = Expand([]string{v}, vars)[0]
	}
	return out
}

// EscapeEnv returns env with every "$" doubled, so that ExpandEnv leaves
// its values as they are.
func EscapeEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = strings.ReplaceAll(v, "$", "$$")
	}
	return out
}

// InstanceEnv is an instance's environment as the runtimes build it:
// s.Env with its values expanded against the variables moorage sets, then
// those variables: PORT and the MOORAGE_* identity variables (BaseEnv),
// vols (MOORAGE_VOLUME_<NAME>), and the MOORAGE_* variables the engine put
// in s.Env (how to reach accessories).
func InstanceEnv(s *InstanceSpec, port int, vols map[string]string) map[string]string {
	own := Merge(BaseEnv(s, port), vols)
	for k, v := range s.Env {
		if strings.HasPrefix(k, "MOORAGE_") {
			if _, set := own[k]; !set {
				own[k] = v
			}
		}
	}
	return Merge(ExpandEnv(s.Env, own), BaseEnv(s, port), vols)
}

// AppDirEnv names the variable that holds, on the process runtime, an
// accessory's copy of the app's files (the upload of the release that
// started it).
const AppDirEnv = "MOORAGE_APP_DIR"

// VolumeEnv is the name of the variable that holds a volume's path:
// MOORAGE_VOLUME_<NAME>, upper case, '-' as '_'.
func VolumeEnv(name string) string { return spec.VolumeEnv(name) }

// AccessoryEnv returns the variables that tell services how to reach an
// accessory: MOORAGE_ACCESSORY_<NAME>_HOST, _PORT and _ADDR.
func AccessoryEnv(name, host string, port int) map[string]string {
	p := "MOORAGE_ACCESSORY_" + envName(name)
	return map[string]string{
		p + "_HOST": host,
		p + "_PORT": strconv.Itoa(port),
		p + "_ADDR": host + ":" + strconv.Itoa(port),
	}
}

func envName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// BaseEnv returns the instance environment the runtime adds on top of
// s.Env: PORT and the MOORAGE_* identity variables.
func BaseEnv(s *InstanceSpec, port int) map[string]string {
	env := map[string]string{
		"MOORAGE_APP":      s.App,
		"MOORAGE_SERVICE":  s.Service,
		"MOORAGE_RELEASE":  s.Release,
		"MOORAGE_INSTANCE": s.ID(),
	}
	if port > 0 {
		env["PORT"] = strconv.Itoa(port)
	}
	return env
}

// EnvList flattens env into sorted KEY=VALUE pairs.
func EnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Merge returns a new map with the maps merged left to right.
func Merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
