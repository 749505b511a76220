package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/spec"
)

// TestInternalSigningBounded: a name many handshakes need at once is
// signed once; names the default route answers without their being
// configured get new leaves at a bounded rate, while configured hosts and
// names already served are not limited.
func TestInternalSigningBounded(t *testing.T) {
	m, err := New(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.SetApp("lan", []Site{{Hosts: []string{"myapp.lan"}, Mode: spec.TLSInternal}}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetApp("any", []Site{{Mode: spec.TLSInternal}}); err != nil {
		t.Fatal(err)
	}
	m.ca.mu.Lock()
	m.ca.newNames = tokenBucket{burst: 3, every: time.Hour}
	m.ca.mu.Unlock()

	// Concurrent handshakes for one new name: one signature.
	before := m.ca.signed.Load()
	var wg sync.WaitGroup
	serials := make([]string, 64)
	for i := range serials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "first.example"})
			if err != nil {
				t.Error(err)
				return
			}
			serials[i] = c.Leaf.SerialNumber.String()
		}()
	}
	wg.Wait()
	if n := m.ca.signed.Load() - before; n != 1 {
		t.Errorf("64 concurrent handshakes for one name signed %d leaves", n)
	}
	for _, s := range serials {
		if s != serials[0] {
			t.Fatalf("different leaves served: %v", serials)
		}
	}

	// Two more new names fit the burst; the next is refused, clearly.
	for _, n := range []string{"second.example", "third.example"} {
		if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: n}); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	for i := range 20 {
		_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: fmt.Sprintf("flood%d.example", i)})
		if !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), "too many new names") {
			t.Fatalf("name %d over the limit: %v", i, err)
		}
	}
	// Served names, configured hosts and IP addresses are not limited.
	for _, n := range []string{"first.example", "myapp.lan", ""} {
		if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: n, Conn: fakeConn{local: "192.0.2.10:443"}}); err != nil {
			t.Errorf("%q under the limit: %v", n, err)
		}
	}
	if n := m.ca.signed.Load() - before; n != 5 {
		t.Errorf("%d leaves signed, want 5 (3 names, myapp.lan, the IP address)", n)
	}
}

// TestTokenBucket: burst at once, then one per interval.
func TestTokenBucket(t *testing.T) {
	b := tokenBucket{burst: 2, every: time.Second}
	now := time.Unix(1000, 0)
	got := []bool{b.take(now), b.take(now), b.take(now), b.take(now.Add(500 * time.Millisecond)), b.take(now.Add(1100 * time.Millisecond)), b.take(now.Add(1200 * time.Millisecond))}
	want := []bool{true, true, false, false, true, false}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("takes %v, want %v", got, want)
		}
	}
}
