package engine

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/spec"
)

func hostSpec(app, hosts string) string {
	return "app: " + app + "\nruntime: process\nservices:\n  web:\n    command: ./web\n    http: {hosts: [" + hosts + "]}\n"
}

// Two apps claiming one host at the same moment: exactly one claim holds,
// the other fails naming the first and saying how to fix it; once the
// holder releases its claim (its operation ended) and routes nothing, the
// host is free again. A host another app routes is refused too.
func TestClaimHosts(t *testing.T) {
	p := proxy.New(proxy.Options{})
	defer p.Close()
	e := &Engine{proxy: p}
	a, b := mustSpec(t, hostSpec("alpha", "shared.test")), mustSpec(t, hostSpec("beta", "other.test, shared.test"))

	var wg sync.WaitGroup
	errs := map[string]error{}
	releases := map[string]func(){}
	var mu sync.Mutex
	specs := map[string]*spec.Spec{"alpha": a, "beta": b}
	for app, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := e.claimHTTPHosts(app, sp)
			mu.Lock()
			errs[app], releases[app] = err, release
			mu.Unlock()
		}()
	}
	wg.Wait()
	if (errs["alpha"] == nil) == (errs["beta"] == nil) {
		t.Fatalf("want exactly one claim to hold: alpha %v, beta %v", errs["alpha"], errs["beta"])
	}
	winner, loser := "alpha", "beta"
	if errs["alpha"] != nil {
		winner, loser = loser, winner
	}
	err := errs[loser]
	if !errors.Is(err, ErrHostClaimed) {
		t.Errorf("not ErrHostClaimed: %v", err)
	}
	for _, want := range []string{`host "shared.test"`, `app "` + winner + `"`, "http.hosts of " + loser} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// The same app may claim again (its next operation); others may once
	// the claim is released.
	releases[winner]()
	release, err := e.claimHTTPHosts(loser, specs[loser])
	if err != nil {
		t.Fatalf("after the release: %v", err)
	}
	release()

	// A host the proxy routes to another app.
	if err := p.SetApp("alpha", []proxy.RouteTargets{{Route: proxy.Route{App: "alpha", Service: "web", Hosts: []string{"shared.test"}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.claimHTTPHosts("beta", b)
	if !errors.Is(err, ErrHostClaimed) || !strings.Contains(err.Error(), `already routed to app "alpha"`) || !strings.Contains(err.Error(), "http.hosts of beta") {
		t.Fatalf("routed host: %v", err)
	}
}

func mustSpec(t *testing.T, text string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("moorage.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}
