package edge_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/moorage/moorage/internal/edge"
)

// nopWriter is a ResponseWriter that keeps its header map, like the
// proxy's front.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

var nop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// busyEdge has many apps, some with every policy.
func busyEdge(tb testing.TB) *edge.Edge {
	e := edge.New(nop, edge.Options{})
	for i := range 200 {
		site := edge.Site{Hosts: []string{fmt.Sprintf("app%d.test", i), fmt.Sprintf("www.app%d.test", i)}}
		if i%2 == 0 {
			site.TLS, site.HSTS, site.Canonical = true, true, site.Hosts[0]
		}
		if err := e.SetApp(fmt.Sprintf("app%d", i), []edge.Site{site}); err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

func requests() map[string]*http.Request {
	secure := httptest.NewRequest("GET", "https://app0.test/x?y=1", nil)
	secure.TLS = &tls.ConnectionState{}
	return map[string]*http.Request{
		"plain host without policy": httptest.NewRequest("GET", "http://app1.test/x?y=1", nil),
		"unclaimed host":            httptest.NewRequest("GET", "http://nobody.test:8080/x", nil),
		"https with hsts":           secure,
	}
}

// TestPassThroughAllocs: a request the edge passes to the proxy costs no
// allocation.
func TestPassThroughAllocs(t *testing.T) {
	e := busyEdge(t)
	idle := edge.New(nop, edge.Options{})
	w := &nopWriter{h: http.Header{}}
	for name, r := range requests() {
		for _, h := range []http.Handler{e, idle} {
			if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
				t.Errorf("%s: %.1f allocations per request", name, n)
			}
		}
	}
}

func BenchmarkPassThrough(b *testing.B) {
	e := busyEdge(b)
	w := &nopWriter{h: http.Header{}}
	for name, r := range requests() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.ServeHTTP(w, r)
			}
		})
	}
	b.Run("without the edge", func(b *testing.B) {
		r := requests()["plain host without policy"]
		b.ReportAllocs()
		for b.Loop() {
			nop.ServeHTTP(w, r)
		}
	})
}

func BenchmarkRedirect(b *testing.B) {
	e := busyEdge(b)
	r := httptest.NewRequest("GET", "http://www.app0.test/x?y=1", nil)
	b.ReportAllocs()
	for b.Loop() {
		e.ServeHTTP(&nopWriter{h: http.Header{}}, r)
	}
}
