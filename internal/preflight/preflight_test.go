package preflight

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

func parse(t *testing.T, y string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("moorage.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func statusOf(rs []Result, name string) Result {
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	return Result{}
}

func TestSecurityFindings(t *testing.T) {
	sp := parse(t, `
app: shop
runtime: docker
secrets: [SECRET_KEY, API_TOKEN]
services:
  web:
    command: ./web
    allow_root: true
    http: {hosts: [shop.example.com, shop.localhost]}
  worker:
    command: ./worker
    user: "1000"
    read_only: true
`)
	rs := Security(sp, Config{"SECRET_KEY": true}, false)
	for name, want := range map[string]string{
		"security.secrets":     Fail,
		"security.root.web":    Warn,
		"security.root.worker": Pass,
		"security.health.web":  Warn,
		"security.tls.web":     Warn,
		"security.read_only":   Warn,
	} {
		r := statusOf(rs, name)
		if r.Status != want {
			t.Errorf("%s: %q, want %q (%+v)", name, r.Status, want, r)
		}
		if want != Pass && r.Fix == "" {
			t.Errorf("%s has no fix", name)
		}
	}
	if r := statusOf(rs, "security.secrets"); !strings.Contains(r.Message, "API_TOKEN") || strings.Contains(r.Message, "SECRET_KEY") {
		t.Errorf("secrets finding: %+v", r)
	}
	if r := statusOf(rs, "security.tls.web"); strings.Contains(r.Message, "localhost") {
		t.Errorf("a local host is not public: %+v", r)
	}
	if r := statusOf(rs, "security.read_only"); !strings.Contains(r.Message, "web") || strings.Contains(r.Message, "worker") {
		t.Errorf("read_only finding: %+v", r)
	}
}

func TestSecurityClean(t *testing.T) {
	sp := parse(t, `
app: shop
runtime: process
secrets: [SECRET_KEY]
services:
  web:
    command: ./web
    user: www-data
    http: {hosts: [shop.example.com], tls: auto}
    health: {path: /healthz}
`)
	rs := Security(sp, Config{"SECRET_KEY": true}, true)
	for _, r := range rs {
		if r.Status != Pass {
			t.Errorf("%s: %s %s", r.Name, r.Status, r.Message)
		}
	}
	// The server as root and no user: the service runs as the app's user.
	sp.Services["web"].User = ""
	if r := statusOf(Security(sp, Config{"SECRET_KEY": true}, true), "security.root.web"); r.Status != Pass {
		t.Errorf("process service as the app's user: %+v", r)
	}
	// With allow_root, as root.
	sp.Services["web"].AllowRoot = true
	if r := statusOf(Security(sp, Config{"SECRET_KEY": true}, true), "security.root.web"); r.Status != Warn || !strings.Contains(r.Fix, "drop allow_root") {
		t.Errorf("process service with allow_root: %+v", r)
	}
	// A plain value where a secret is declared.
	if r := statusOf(Security(sp, Config{"SECRET_KEY": false}, false), "security.secrets"); r.Status != Fail || !strings.Contains(r.Fix, "--secret SECRET_KEY") {
		t.Errorf("plain secret: %+v", r)
	}
}

func TestPublic(t *testing.T) {
	for h, want := range map[string]bool{
		"shop.example.com": true, "*.acme.io": true, "8.8.8.8": true,
		"localhost": false, "app.localhost": false, "10.0.0.5": false, "192.168.1.2": false,
		"127.0.0.1": false, "shop.test": false, "box.local": false, "intranet": false,
	} {
		if got := Public(h); got != want {
			t.Errorf("Public(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestReportFailed(t *testing.T) {
	r := Report{Results: []Result{{Status: Pass}, {Status: Warn}}}
	if r.Failed() {
		t.Fatal("warnings failed the report")
	}
	r.Results = append(r.Results, Result{Status: Fail})
	if !r.Failed() {
		t.Fatal("a failure did not fail the report")
	}
}
