package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRouting(t *testing.T) {
	p, srv := newTestProxy(t, Options{})
	shop, shopAPI, blog, other, api := newBackend(t, "shop"), newBackend(t, "shop-api"), newBackend(t, "blog"), newBackend(t, "other"), newBackend(t, "api-only")

	mustSetApp(t, p, "shop",
		RouteTargets{Route: Route{Service: "web", Hosts: []string{"Example.COM", "www.example.com."}, PathPrefix: "/"}, Targets: targets(shop)},
		RouteTargets{Route: Route{Service: "api", Hosts: []string{"example.com"}, PathPrefix: "/api/"}, Targets: targets(shopAPI)},
	)
	mustSetApp(t, p, "blog", RouteTargets{Route: Route{Hosts: []string{"*.blog.test"}}, Targets: targets(blog)})
	mustSetApp(t, p, "other", RouteTargets{Route: Route{}, Targets: targets(other)}) // the default route
	mustSetApp(t, p, "apionly", RouteTargets{Route: Route{Hosts: []string{"only.test"}, PathPrefix: "/api"}, Targets: targets(api)})

	c := srv.Client()
	for _, tc := range []struct {
		host, path string
		status     int
		want       string
	}{
		{"example.com", "/", 200, "shop"},
		{"EXAMPLE.com", "/x", 200, "shop"},
		{"example.com.", "/", 200, "shop"},
		{"example.com:8443", "/", 200, "shop"},
		{"www.example.com", "/api/v1", 200, "shop"}, // the /api route only lists example.com
		{"example.com", "/api", 200, "shop-api"},
		{"example.com", "/api/v1/users", 200, "shop-api"},
		{"example.com", "/apix", 200, "shop"},
		{"a.blog.test", "/", 200, "blog"},
		{"Deep.Blog.Test:80", "/", 200, "blog"},
		{"x.a.blog.test", "/", 200, "other"}, // a wildcard covers one label
		{"blog.test", "/", 200, "other"},
		{"unknown.net", "/", 200, "other"},
		{"127.0.0.1", "/", 200, "other"},
		{"[::1]:8080", "/", 200, "other"},
		{"only.test", "/api/x", 200, "api-only"},
		{"only.test", "/", 404, "No app is routed"}, // the host's routes decide alone
	} {
		status, body := get(t, c, srv.URL+tc.path, tc.host)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s%s: got %d %q, want %d %q", tc.host, tc.path, status, body, tc.status, tc.want)
		}
	}

	p.RemoveApp("other")
	status, body := get(t, c, srv.URL+"/", "unknown.net")
	if status != http.StatusNotFound || !strings.Contains(body, "<html") {
		t.Fatalf("unknown host without a default route: got %d %q, want the 404 page", status, body)
	}
	if s, ok := statusOf(p, "other", "other"); !ok || s.Routed {
		t.Fatalf("after RemoveApp the target should be known and unrouted until drained: %+v %v", s, ok)
	}
	if n := p.Drain(bg, []string{"other"}, 0); n != 0 {
		t.Fatalf("Drain of an idle target: %d in flight", n)
	}
	if _, ok := statusOf(p, "other", "other"); ok {
		t.Fatal("a drained target should be forgotten")
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"example.com":      "example.com",
		"Example.COM:8080": "example.com",
		"example.com.":     "example.com",
		"EXAMPLE.com.:443": "example.com",
		"[::1]:8080":       "::1",
		"[::1]":            "::1",
		"::1":              "::1",
		"127.0.0.1:80":     "127.0.0.1",
	} {
		if got := canonicalHost(in); got != want {
			t.Errorf("canonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = canonicalHost("www.example.com:8080") }); n != 0 {
		t.Errorf("canonicalHost allocates %.0f times for a canonical host", n)
	}
}

func TestCheckHosts(t *testing.T) {
	p, _ := newTestProxy(t, Options{})
	b := newBackend(t, "a1")
	mustSetApp(t, p, "alpha",
		RouteTargets{Route: Route{Hosts: []string{"example.com", "*.example.org"}}, Targets: targets(b)},
		RouteTargets{Route: Route{}, Targets: targets(b)},
	)

	for _, tc := range []struct {
		name   string
		routes []Route
		err    error
		msg    []string
	}{
		{"same exact host", []Route{{Hosts: []string{"example.com"}}}, ErrHostConflict, []string{`"example.com"`, `"alpha"`}},
		{"normalized host", []Route{{Hosts: []string{"EXAMPLE.com."}}}, ErrHostConflict, []string{`"example.com"`, `"alpha"`}},
		{"same wildcard", []Route{{Hosts: []string{"*.example.org"}}}, ErrHostConflict, []string{`"*.example.org"`, `"alpha"`}},
		{"second default route", []Route{{PathPrefix: "/api"}}, ErrHostConflict, []string{"default route", `"alpha"`}},
		{"host listed twice", []Route{{Hosts: []string{"b.test"}}, {Hosts: []string{"B.test"}, PathPrefix: "/"}}, ErrHostConflict, []string{`"b.test"`, "twice"}},
		{"bad host", []Route{{Hosts: []string{"exa mple.com"}}}, ErrInvalidRoute, []string{"exa mple.com"}},
		{"host with port", []Route{{Hosts: []string{"b.test:8080"}}}, ErrInvalidRoute, []string{"port"}},
		{"inner wildcard", []Route{{Hosts: []string{"a.*.test"}}}, ErrInvalidRoute, []string{"wildcard"}},
		{"bad prefix", []Route{{Hosts: []string{"b.test"}, PathPrefix: "api"}}, ErrInvalidRoute, []string{"start with /"}},
		{"free hosts", []Route{{Hosts: []string{"b.test", "www.example.com", "x.example.org.example.com"}}}, nil, nil},
		{"exact host under another app's wildcard", []Route{{Hosts: []string{"x.example.org"}}}, nil, nil},
	} {
		err := p.CheckHosts("beta", tc.routes)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: CheckHosts = %v, want %v", tc.name, err, tc.err)
			continue
		}
		for _, m := range tc.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not name %s", tc.name, err, m)
			}
		}
	}
	if err := p.CheckHosts("alpha", []Route{{Hosts: []string{"example.com"}}, {}}); err != nil {
		t.Errorf("an app may keep its own hosts: %v", err)
	}

	// SetApp refuses the same conflicts and changes nothing.
	c := newBackend(t, "b1")
	if err := p.SetApp("beta", []RouteTargets{{Route: Route{Hosts: []string{"example.com"}}, Targets: targets(c)}}); !errors.Is(err, ErrHostConflict) {
		t.Fatalf("SetApp with a taken host: %v", err)
	}
	if err := p.SetApp("beta", []RouteTargets{{Route: Route{Hosts: []string{"b.test"}}, Targets: targets(b)}}); !errors.Is(err, ErrTargetConflict) {
		t.Fatalf("SetApp with another app's target ID: %v", err)
	}
	if err := p.SetApp("beta", []RouteTargets{{Route: Route{Hosts: []string{"b.test"}}, Targets: []Target{{ID: "x", Addr: "nowhere"}}}}); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("SetApp with a bad address: %v", err)
	}
	if got := p.Status("beta"); len(got) != 0 {
		t.Fatalf("failed SetApp calls left targets behind: %+v", got)
	}
	if rt := p.table.Load().lookup("b.test", "/"); rt == nil || rt.App != "alpha" {
		t.Fatalf("failed SetApp calls changed the routing table: %+v", rt)
	}
}

// BenchmarkRouteLookup looks hosts up in tables of 100 and 10,000 hosts:
// exact, wildcard and default lookups are map hits, independent of the
// table size, and allocate nothing for canonical request hosts.
func BenchmarkRouteLookup(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchmarkRouteLookup(b, n) })
	}
}

func benchmarkRouteLookup(b *testing.B, n int) {
	apps := map[string][]*route{}
	hosts := make([]string, 0, n)
	for i := range n {
		app := fmt.Sprintf("app%d", i)
		h := fmt.Sprintf("www.app%d.example.com", i)
		hosts = append(hosts, h)
		cfg, err := Route{Hosts: []string{h, fmt.Sprintf("*.app%d.example.net", i)}}.normalize(app)
		if err != nil {
			b.Fatal(err)
		}
		apps[app] = []*route{
			newRoute(cfg, nil),
			newRoute(Route{App: app, Hosts: cfg.Hosts, PathPrefix: "/api"}, nil),
		}
	}
	apps["default"] = []*route{newRoute(Route{App: "default"}, nil)}
	tbl := buildTable(apps)
	for _, h := range []string{"WWW.APP42.EXAMPLE.COM.:443", "x.app42.example.net", "unknown.example"} {
		if tbl.lookup(canonicalHost(h), "/api/x") == nil {
			b.Fatalf("no route for %s", h)
		}
	}
	// Canonical request hosts (as browsers send them) must not allocate.
	last := fmt.Sprintf("www.app%d.example.com", n-1)
	requests := []string{"www.app42.example.com:443", "x.app42.example.net", "unknown.example", last}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var h string
		if i&1 == 0 {
			h = hosts[i%len(hosts)]
		} else {
			h = requests[i%len(requests)]
		}
		if tbl.lookup(canonicalHost(h), "/api/users") == nil {
			b.Fatal("no route")
		}
	}
}
