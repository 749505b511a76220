package api

import "testing"

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example.com":          "registry.example.com",
		"Registry.Example.COM:5000":     "registry.example.com:5000",
		"https://registry.example.com/": "registry.example.com",
		"http://10.0.0.1:5000":          "10.0.0.1:5000",
		"index.docker.io":               DockerHub,
		"https://index.docker.io/v1/":   DockerHub,
		"registry-1.docker.io":          DockerHub,
		"docker.io":                     DockerHub,
		"localhost:5000":                "localhost:5000",
	} {
		got, err := RegistryHost(in)
		if err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "registry.example.com/team", "reg istry", "user@host"} {
		if got, err := RegistryHost(in); err == nil {
			t.Errorf("RegistryHost(%q) = %q, want an error", in, got)
		}
	}
}

// The host a login is looked up for is the image's own registry: a login
// for one host never goes to another.
func TestRegistryHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"10.231.0.1:5000/team/hello@sha256:abcd": "10.231.0.1:5000",
		"10.231.0.1:5000/team/hello:v1":          "10.231.0.1:5000",
		"registry.example.com/app:v2":            "registry.example.com",
		"Registry.Example.com/app":               "registry.example.com",
		"localhost/app":                          "localhost",
		"postgres:16":                            DockerHub,
		"library/postgres:16":                    DockerHub,
		"team/app":                               DockerHub,
		"docker.io/team/app":                     DockerHub,
		"index.docker.io/team/app":               DockerHub,
		"sha256:0123456789abcdef":                "",
		"":                                       "",
	} {
		if got := RegistryHostOf(in); got != want {
			t.Errorf("RegistryHostOf(%q) = %q, want %q", in, got, want)
		}
	}
	// A login for registry.example.com is not for its look-alikes.
	for _, ref := range []string{"registry.example.com.evil.net/app", "evil.net/registry.example.com/app", "registry.example.com:444/app"} {
		if RegistryHostOf(ref) == "registry.example.com" {
			t.Errorf("%s counts as on registry.example.com", ref)
		}
	}
}

func TestRegistryLoginRequestValidate(t *testing.T) {
	r := RegistryLoginRequest{Host: "HTTPS://Reg.example.com/", Username: "u", Password: "p"}
	if err := r.Validate(); err != nil || r.Host != "reg.example.com" {
		t.Fatalf("Validate: %v, host %q", err, r.Host)
	}
	for _, bad := range []RegistryLoginRequest{
		{Host: "reg.example.com", Password: "p"},
		{Host: "reg.example.com", Username: "u"},
		{Host: "reg.example.com/ns", Username: "u", Password: "p"},
		{Username: "u\nx", Password: "p"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	// An error never repeats the password.
	r = RegistryLoginRequest{Host: "reg.example.com/ns", Username: "u", Password: "hunter2"}
	if err := r.Validate(); err == nil || contains(err.Error(), "hunter2") {
		t.Fatalf("Validate: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
