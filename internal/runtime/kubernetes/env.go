package kubernetes

import (
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	corev1 "k8s.io/api/core/v1"
)

// kubeArg turns a moorage argument or env value, where $NAME and ${NAME}
// refer to variables and "$$" is a literal "$" (runtime.Expand), into the
// kubelet's syntax, where $(NAME) refers to a variable and "$$" is a
// literal "$". A reference to a variable the instance will not have
// becomes "", as moorage's own expansion makes it (the kubelet would leave
// "$(NAME)" as it is).
func kubeArg(a string, known func(string) bool) string {
	var b strings.Builder
	splitRefs(a, func(lit string) {
		b.WriteString(kubeLiteral(lit))
	}, func(name string) {
		if known(name) {
			b.WriteString("$(" + name + ")")
		}
	})
	return b.String()
}

// splitRefs reads a moorage argument or env value (runtime.Expand's
// syntax) in order: lit gets each run of literal text ("$$" made "$", a
// "$" that starts no reference kept), ref each name referred to as $NAME
// or ${NAME}.
func splitRefs(a string, lit, ref func(string)) {
	const dollar, open, close = "\x00", "\x01", "\x02"
	a = strings.ReplaceAll(a, "$$", dollar)
	a = os.Expand(a, func(k string) string { return open + k + close })
	for a != "" {
		i := strings.IndexAny(a, dollar+open)
		if i < 0 {
			lit(a)
			return
		}
		if i > 0 {
			lit(a[:i])
		}
		if a[i] == dollar[0] {
			lit("$")
			a = a[i+1:]
			continue
		}
		j := strings.IndexByte(a[i:], close[0])
		ref(a[i+1 : i+j])
		a = a[i+j+1:]
	}
}

// kubeLiteral escapes a literal value for the kubelet, which expands
// $(NAME) and "$$" in commands, env values and exec probes: every "$" is
// doubled, so the kubelet gives back the value as it is.
func kubeLiteral(v string) string { return strings.ReplaceAll(v, "$", "$$") }

// inShell returns argv to run in a container with moorage's expansion
// ($NAME, ${NAME}, "$$" as runtime.Expand) done there, from the
// container's own environment, so that no value (a secret included) leaves
// the cluster or lands in an object or an API request. An argv that refers
// to nothing is returned as it is ("$$" made "$"); one that does runs as
// /bin/sh -c with every argument in double quotes (no word splitting, as
// Expand) and every reference as "${NAME}", so the image needs a shell
// only when a command refers to a variable.
func inShell(argv []string) []string {
	if len(runtime.Refs(argv)) == 0 {
		return runtime.Expand(argv, nil)
	}
	var b strings.Builder
	b.WriteString("exec")
	for _, a := range argv {
		b.WriteString(` "`)
		splitRefs(a, func(lit string) {
			for _, c := range lit {
				if strings.ContainsRune("$\\\"`", c) {
					b.WriteByte('\\')
				}
				b.WriteRune(c)
			}
		}, func(name string) {
			// A name the shell has no variable for ($1, ${a b}) is "",
			// as Expand makes it in an env of names.
			if shellName(name) {
				b.WriteString("${" + name + "}")
			}
		})
		b.WriteString(`"`)
	}
	return []string{"/bin/sh", "-c", b.String()}
}

// shellName reports whether name is a shell variable's name.
func shellName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// hasRefs reports whether a moorage value refers to a variable.
func hasRefs(v string) bool { return len(runtime.Refs([]string{v})) > 0 }

// unescape turns a moorage value with no references into its literal
// value ("$$" is "$").
func unescape(v string) string { return runtime.Expand([]string{v}, nil)[0] }

// envPlan is where each variable of a release's instances comes from.
//
// moorage's precedence, lowest first (engine.releaseEnv, then
// runtime.InstanceEnv): the spec's env, the service's env, config values,
// secrets, how to reach accessories, then what the runtime sets (PORT,
// MOORAGE_APP, _SERVICE, _RELEASE, _INSTANCE, MOORAGE_VOLUME_*). On
// Kubernetes a container's `env` entries win over its `envFrom` sources,
// and among those the last wins. So:
//   - the release's ConfigMap holds the spec's env (when its value refers
//     to nothing), the config values and the accessory variables, less the
//     keys a secret overrides;
//   - the release's Secret holds the secrets;
//   - envFrom lists the Secret, then the ConfigMap (an accessory variable
//     wins over a secret of the same name);
//   - each container's `env` lists what the runtime sets, then the
//     service's env and the spec's env values that refer to variables
//     (the kubelet expands $(NAME) in them), each only where nothing above
//     it in moorage's order sets the same key.
type envPlan struct {
	specEnv  map[string]string // moorage syntax
	config   map[string]string // literal
	secrets  map[string]string // literal
	access   map[string]string // literal
	cm       map[string]string // the ConfigMap's data
	released map[string]bool   // keys set by the release (ConfigMap, Secret)
}

func newEnvPlan(specEnv, config, secrets, access map[string]string) *envPlan {
	p := &envPlan{specEnv: specEnv, config: config, secrets: secrets, access: access, cm: map[string]string{}, released: map[string]bool{}}
	for k, v := range specEnv {
		if !hasRefs(v) {
			p.cm[k] = unescape(v)
		}
	}
	for k, v := range config {
		p.cm[k] = v
	}
	for k := range secrets {
		delete(p.cm, k)
		p.released[k] = true
	}
	for k, v := range access {
		p.cm[k] = v
	}
	for k := range p.cm {
		p.released[k] = true
	}
	return p
}

// container returns the `env` entries of one container: base are the
// variables the runtime sets (their values literal), svcEnv the service's
// env (moorage syntax; nil for tasks), and instance says whether to add
// MOORAGE_INSTANCE as the pod's name.
func (p *envPlan) container(base, svcEnv map[string]string, instance bool) []corev1.EnvVar {
	var out []corev1.EnvVar
	own := map[string]bool{}
	if instance {
		own["MOORAGE_INSTANCE"] = true
		out = append(out, corev1.EnvVar{Name: "MOORAGE_INSTANCE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}})
	}
	for _, k := range slices.Sorted(maps.Keys(base)) {
		own[k] = true
		out = append(out, corev1.EnvVar{Name: k, Value: kubeLiteral(base[k])})
	}
	// The variables an env value may refer to (spec.EnvValueRefs: only
	// those moorage sets): the runtime's and the accessories'.
	known := func(k string) bool { return own[k] || p.access[k] != "" }
	overridden := func(k string) bool {
		_, c := p.config[k]
		_, s := p.secrets[k]
		_, a := p.access[k]
		return own[k] || c || s || a
	}
	keys := map[string]bool{}
	for k := range svcEnv {
		keys[k] = true
	}
	for k, v := range p.specEnv {
		if hasRefs(v) {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if overridden(k) {
			continue
		}
		v, ok := svcEnv[k]
		if !ok {
			v = p.specEnv[k]
		}
		out = append(out, corev1.EnvVar{Name: k, Value: kubeArg(v, known)})
	}
	return out
}

// commandKnown says which variables a command of a container may refer
// to: everything it will have.
func (p *envPlan) commandKnown(env []corev1.EnvVar) func(string) bool {
	set := map[string]bool{}
	for _, e := range env {
		set[e.Name] = true
	}
	return func(k string) bool { return set[k] || p.released[k] }
}

// baseEnv is what the runtime sets in every instance but MOORAGE_INSTANCE
// (the pod's name, set from the pod): runtime.BaseEnv and the volumes'
// variables.
func baseEnv(app, svc, rel string, port int, vols map[string]string) map[string]string {
	env := map[string]string{"MOORAGE_APP": app, "MOORAGE_SERVICE": svc, "MOORAGE_RELEASE": rel}
	if port > 0 {
		env["PORT"] = strconv.Itoa(port)
	}
	for k, v := range vols {
		env[k] = v
	}
	return env
}
