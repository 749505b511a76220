package runtime

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/moorage/moorage/internal/spec"
)

// BuildEnvVar names the server environment variable listing more variables
// of the server's environment (comma or space separated) that build.command
// gets, beyond BuildEnvPassed.
const BuildEnvVar = "MOORAGE_BUILD_ENV"

// BuildEnvPassed are the variables of the server's environment that
// build.command gets: what compilers and package managers need to find
// their tools, caches, locale, temporary directory and proxies. The rest
// of the server's environment stays out: it can hold the server's own
// secrets (MOORAGE_ACME_FALLBACK_EAB_HMAC, cloud credentials), and build
// output is stored with the deploy.
var BuildEnvPassed = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
	"XDG_CACHE_HOME", "XDG_CONFIG_HOME",
	"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"GOPATH", "GOCACHE", "GOMODCACHE", "GOROOT", "GOTOOLCHAIN", "GOFLAGS",
	"GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE",
	"CARGO_HOME", "RUSTUP_HOME", "npm_config_cache", "PIP_CACHE_DIR",
}

// BuildEnv is the environment of build.command: the variables of server
// (an os.Environ-style list) named in BuildEnvPassed, any LC_* variable
// and those MOORAGE_BUILD_ENV lists, then app (the app's env and config
// values, never its secrets), then MOORAGE_APP and MOORAGE_RELEASE. app's
// values are expanded as instances' are (config values come escaped,
// EscapeEnv), against MOORAGE_APP and MOORAGE_RELEASE; a value that refers
// to anything else ($PORT, a volume) is left out, since a build has none
// of those: leftOut says which, for the build's output.
func BuildEnv(server []string, app map[string]string, appName, release string) (env map[string]string, leftOut []string) {
	byName := map[string]string{}
	for _, kv := range server {
		if k, v, ok := strings.Cut(kv, "="); ok {
			byName[k] = v
		}
	}
	extra := strings.FieldsFunc(byName[BuildEnvVar], func(r rune) bool { return r == ',' || r == ' ' })
	env = map[string]string{}
	for k, v := range byName {
		if slices.Contains(BuildEnvPassed, k) || strings.HasPrefix(k, "LC_") || slices.Contains(extra, k) {
			env[k] = v
		}
	}
	own := map[string]string{"MOORAGE_APP": appName, "MOORAGE_RELEASE": release}
	expanded := map[string]string{}
	for k, v := range app {
		refs, bad := spec.EnvValueRefs(v)
		if bad != "" {
			leftOut = append(leftOut, fmt.Sprintf("%s (%s)", k, bad))
			continue
		}
		var missing []string
		for _, r := range refs {
			if _, ok := own[r]; !ok {
				missing = append(missing, "$"+r)
			}
		}
		if len(missing) > 0 {
			leftOut = append(leftOut, fmt.Sprintf("%s (refers to %s, which only instances have)", k, strings.Join(missing, ", ")))
			continue
		}
		expanded[k] = v
	}
	slices.Sort(leftOut)
	return Merge(env, ExpandEnv(expanded, own), own), leftOut
}

// ServerBuildEnv is BuildEnv with the server's own environment; it says in
// out what it left out.
func ServerBuildEnv(app map[string]string, appName, release string, out io.Writer) map[string]string {
	env, left := BuildEnv(os.Environ(), app, appName, release)
	for _, l := range left {
		fmt.Fprintf(out, "note: %s is left out of the build's environment\n", l)
	}
	return env
}
