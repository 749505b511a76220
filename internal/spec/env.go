package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// CheckEnvKey returns an error when k cannot be set as an environment
// variable of an app (bad name, or one moorage sets itself). `moorage config
// set` uses it.
func CheckEnvKey(k string) error {
	if why := checkEnvKey(k); why != "" {
		return fmt.Errorf("%s: %s", k, why)
	}
	return nil
}

// CheckName returns an error when name is not a valid app, service,
// accessory or volume name.
func CheckName(name string) error {
	if why := checkName(name); why != "" {
		return fmt.Errorf("name %s", why)
	}
	return nil
}

// EnvValueRefs returns the variables an env value refers to as $NAME or
// ${NAME}, in order, each once, the way the runtime expands env values:
// "$$" is a literal "$", and a "$" followed by anything that cannot start
// a name ("$/", a "$" at the end) stays as it is. bad is set, with why,
// when the value holds something that would expand oddly: "${" without
// "}", "${...}" around something that is not a name, or a shell special
// parameter ($1, $*, $?, ...).
func EnvValueRefs(v string) (refs []string, bad string) {
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			refs = append(refs, n)
		}
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '$' || i+1 >= len(v) {
			continue
		}
		c := v[i+1]
		switch {
		case c == '$':
			i++
		case c == '{':
			end := strings.IndexByte(v[i+2:], '}')
			if end < 0 {
				return refs, fmt.Sprintf("%s has no closing }", v[i:])
			}
			name := v[i+2 : i+2+end]
			if !envNameRe.MatchString(name) {
				return refs, fmt.Sprintf("${%s} is not a variable reference (a name is letters, digits and _, not starting with a digit)", name)
			}
			add(name)
			i += 2 + end
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i + 1
			for j < len(v) && (v[j] == '_' || v[j] >= 'A' && v[j] <= 'Z' || v[j] >= 'a' && v[j] <= 'z' || v[j] >= '0' && v[j] <= '9') {
				j++
			}
			add(v[i+1 : j])
			i = j - 1
		case c >= '0' && c <= '9' || strings.IndexByte("*#@!?-", c) >= 0:
			return refs, fmt.Sprintf("$%c is a shell special parameter, which moorage does not set", c)
		}
	}
	return refs, ""
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envVars are the variables moorage sets that env values can refer to,
// for one kind of instance.
type envVars struct {
	port     bool            // PORT
	release  bool            // MOORAGE_RELEASE
	appDir   bool            // MOORAGE_APP_DIR
	volumes  map[string]bool // names of MOORAGE_VOLUME_<NAME> variables
	accessed map[string]bool // MOORAGE_ACCESSORY_* variables
}

func (ev envVars) has(k string) bool {
	switch {
	case k == "PORT":
		return ev.port
	case k == "MOORAGE_RELEASE":
		return ev.release
	case k == "MOORAGE_APP_DIR":
		return ev.appDir
	case k == "MOORAGE_APP" || k == "MOORAGE_SERVICE" || k == "MOORAGE_INSTANCE":
		return true
	}
	return ev.volumes[k] || ev.accessed[k]
}

func (ev envVars) list() string {
	var l []string
	if ev.port {
		l = append(l, "$PORT")
	}
	l = append(l, "$MOORAGE_APP", "$MOORAGE_SERVICE", "$MOORAGE_INSTANCE")
	if ev.release {
		l = append(l, "$MOORAGE_RELEASE")
	}
	if ev.appDir {
		l = append(l, "$MOORAGE_APP_DIR")
	}
	for _, k := range sortedKeys(ev.volumes) {
		l = append(l, "$"+k)
	}
	if len(ev.accessed) > 0 {
		l = append(l, "$MOORAGE_ACCESSORY_<NAME>_HOST/_PORT/_ADDR")
	}
	return strings.Join(l, ", ")
}
