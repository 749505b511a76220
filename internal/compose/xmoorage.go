package compose

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/moorage/moorage/internal/spec"
)

// extKey is the extension key moorage reads, at the top level and per
// service. docker compose ignores x- keys, so the file still works there.
const extKey = "x-moorage"

// Roles a service can be given with x-moorage.role.
const (
	RoleService   = "service"   // a process of the app (web, worker...)
	RoleAccessory = "accessory" // a long-lived dependency, never restarted by app deploys
	RoleRelease   = "release"   // a one-shot run once per deploy, before traffic moves
	RoleSkip      = "skip"      // not deployed by moorage (listed in the output)
)

// topExt is the top-level x-moorage mapping.
type topExt struct {
	App            string   `yaml:"app"`
	Hosts          []string `yaml:"hosts"`
	TLS            string   `yaml:"tls"`
	Canonical      string   `yaml:"canonical"`
	HSTS           *bool    `yaml:"hsts"`
	Monitor        string   `yaml:"monitor"`
	DrainTimeout   string   `yaml:"drain_timeout"`
	ReleaseTimeout string   `yaml:"release_timeout"`
	KeepReleases   int      `yaml:"keep_releases"`
	KeepWarm       string   `yaml:"keep_warm"`
	Release        []string `yaml:"release"`
	Checks         []string `yaml:"checks"`
	Backups        *struct {
		Schedule string `yaml:"schedule"`
		Keep     int    `yaml:"keep"`
	} `yaml:"backups"`
}

// svcExt is a service's x-moorage mapping.
type svcExt struct {
	Role         string  `yaml:"role"`
	Singleton    *bool   `yaml:"singleton"`
	HTTP         *httpX  `yaml:"http"`
	Port         int     `yaml:"port"`
	DrainTimeout string  `yaml:"drain_timeout"`
	MinReady     string  `yaml:"min_ready"`
	AllowRoot    bool    `yaml:"allow_root"`
	Backup       *string `yaml:"backup"`
	Timeout      string  `yaml:"timeout"` // release task timeout
}

type httpX struct {
	Hosts       []string `yaml:"hosts"`
	TLS         string   `yaml:"tls"`
	Canonical   string   `yaml:"canonical"`
	Path        string   `yaml:"path"`
	HSTS        *bool    `yaml:"hsts"`
	MaxBody     string   `yaml:"max_body"`
	HoldTimeout string   `yaml:"hold_timeout"`
}

// decodeExt decodes an extension value strictly into out: unknown keys
// and wrong types are errors.
func decodeExt(v any, out any) error {
	if v == nil {
		return nil
	}
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// duration parses an x-moorage duration ("" is unset).
func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return spec.ParseDuration(s)
}
