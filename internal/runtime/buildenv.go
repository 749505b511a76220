package runtime

import (
	"github.com/moorage/moorage/internal/spec"
	"os"
	"slices"
	"strings"
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
// to anything else ($PORT, a volume) is left out: a build has none of
// those.
func BuildEnv(server []string, app map[string]string, appName, release string) map[string]string {
	byName := map[string]string{}
	for _, kv := range server {
		if k, v, ok := strings.Cut(kv, "="); ok {
			byName[k] = v
		}
	}
	extra := strings.FieldsFunc(byName[BuildEnvVar], func(r rune) bool { return r == ',' || r == ' ' })
	env := map[string]string{}
	for k, v := range byName {
		if slices.Contains(BuildEnvPassed, k) || strings.HasPrefix(k, "LC_") || slices.Contains(extra, k) {
			env[k] = v
		}
	}
	own := map[string]string{"MOORAGE_APP": appName, "MOORAGE_RELEASE": release}
	expanded := map[string]string{}
	for k, v := range app {
		if refs, bad := spec.EnvValueRefs(v); bad == "" && !slices.ContainsFunc(refs, func(r string) bool { _, ok := own[r]; return !ok }) {
			expanded[k] = v
		}
	}
	return Merge(env, ExpandEnv(expanded, own), own)
}

// ServerBuildEnv is BuildEnv with the server's own environment.
func ServerBuildEnv(app map[string]string, appName, release string) map[string]string {
	return BuildEnv(os.Environ(), app, appName, release)
}
