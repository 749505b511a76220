package server

import (
	"net"
	"reflect"
	"testing"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/spec"
)

func TestCertsConfigOptions(t *testing.T) {
	c := CertsConfig{Email: "ops@example.com", CA: "https://acme.example/dir", Staging: true, CARoot: "/etc/roots.pem",
		FallbackCA: "https://zerossl.example/dir", FallbackEABKeyID: "kid", FallbackEABMACKey: "hmac",
		ExtraIPs: []net.IP{net.ParseIP("203.0.113.7")}, DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("CertsConfig.%s is not set: set every field, so that the test checks it reaches certs.Options", v.Type().Field(i).Name)
		}
	}
	want := certs.Options{Email: c.Email, CA: c.CA, Staging: true, CARoot: c.CARoot,
		Fallback: &certs.Issuer{CA: c.FallbackCA, EABKeyID: "kid", EABMACKey: "hmac"},
		ExtraIPs: c.ExtraIPs, DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}
	if got := certsOptions(c); !reflect.DeepEqual(got, want) {
		t.Errorf("certsOptions = %+v\nwant %+v", got, want)
	}
	if o := certsOptions(CertsConfig{CA: c.CA}); o.Fallback != nil {
		t.Errorf("no FallbackCA, but a fallback issuer: %+v", o.Fallback)
	}
}

func TestTLSSitesOf(t *testing.T) {
	sp := &spec.Spec{Services: map[string]*spec.Service{
		"web":    {HTTP: &spec.HTTP{TLS: spec.TLS{Mode: spec.TLSAuto}}},
		"admin":  {HTTP: &spec.HTTP{TLS: spec.TLS{Mode: spec.TLSInternal}}},
		"plain":  {HTTP: &spec.HTTP{TLS: spec.TLS{Mode: spec.TLSOff}}},
		"bare":   {HTTP: &spec.HTTP{}},
		"worker": {},
	}}
	want := []TLSSite{{Service: "admin", Mode: spec.TLSInternal}, {Service: "web", Mode: spec.TLSAuto}}
	if got := TLSSitesOf(sp); !reflect.DeepEqual(got, want) {
		t.Errorf("TLSSitesOf = %+v, want %+v", got, want)
	}
}
