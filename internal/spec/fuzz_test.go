package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds are valid and broken specs; more live in
// testdata/fuzz/FuzzParse.
var fuzzSeeds = []string{
	helloSpec,
	designSpec,
	"",
	"app: a\nservices:\n  web: {command: ./run}\n",
	"app: a\nruntime: docker\nimage: nginx\nservices:\n  web: {http: {hosts: ['*.a.test', '::1'], tls: internal}}\n",
	"app: a\nservices:\n  web: {command: [sh, -c, 'echo $$PORT'], replicas: 0}\n",
	"app: a\nx-c: &c {command: ./x}\nservices:\n  web: {<<: *c, replicas: 2}\n  w2: {<<: [*c, {replicas: 3}]}\n",
	"app: a\nservices: &s\n  web: *s\n",
	"a: &a [*a]\n",
	"app: a\nservices:\n  web: &w {<<: *w}\n",
	"app: a\nservices:\n\tweb: {}\n",
	"app: \xff\xfe\nservices: {}\n",
	"app: a\nservices:\n  web:\n    replicas: 999999999999999999999999999999\n    cpus: 1e400\n    memory: 99999999999T\n",
	"app: a\n---\napp: b\n",
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
	"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
	"app: a\nbackups: {schedule: '*/5 1-5,7 * jan-mar mon-fri'}\nservices:\n  web: {command: ./run}\naccessories:\n  db: {command: pg, port: 5432, backup: postgres, volumes: ['d:/d']}\n",
	"? [a]\n: b\n",
	"!!binary YWJj\n",
	"app: !!int a\nservices: !!map {web: !!str {command: x}}\n",
	"app: a\nrelease:\n  - {command: x, timeout: 1d}\n  - [y, z]\nchecks: [w]\nservices:\n  web: {command: ./run}\n",
	"app: a\nservices:\n  web:\n    command: \"./run \\\"\"\n    http: {static: {/m/: m}, max_body: 1.5G, tls: {cert: c, key: k}, hsts: true}\nvolumes:\n  m: {mount: /m, services: [web]}\n",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			s    *Spec
			err  error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			s, err = Parse("fuzz.yaml", data)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse did not return within 10s for %d bytes", len(data))
		}
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a spec and an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("errors.As(ErrorList) failed: %v", err)
			}
			for _, e := range list {
				if e.Msg == "" || strings.Contains(e.Msg, "internal error") {
					t.Fatalf("bad error: %v", e)
				}
			}
			return
		}
		assertRoundTrip(t, s)
		if err := s.Validate(); err != nil {
			t.Fatalf("Validate of a parsed spec: %v", err)
		}
		again, err := Parse("fuzz.yaml", data)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("Parse is not deterministic: %v", err)
		}
		for _, c := range commandsOf(s) {
			back, err := SplitCommand(c.String())
			if err != nil || !reflect.DeepEqual(Command(back), c) {
				t.Fatalf("command %q does not survive String/SplitCommand: %q, %v", []string(c), back, err)
			}
		}
		_ = s.Warnings()
		_ = s.ServiceNames()
		_ = s.VolumesFor("")
	})
}

func commandsOf(s *Spec) []Command {
	var out []Command
	if s.Build != nil && s.Build.Command != nil {
		out = append(out, s.Build.Command)
	}
	for _, t := range append(append([]Task{}, s.Release...), s.Checks...) {
		out = append(out, t.Command)
	}
	for _, svc := range s.Services {
		if svc.Command != nil {
			out = append(out, svc.Command)
		}
	}
	return out
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		"", "a b c", `sh -c 'a && b'`, `"a \"b\" \\c"`, `a\ b`, "a\\\nb", `it'"'"'s`,
		`'unterminated`, `"unterminated`, `trailing\`, "tab\there", "日本 語", `$(x) ` + "`y`", "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, op, err := splitCommand(s)
		plain, err2 := SplitCommand(s)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(args, plain) {
			t.Fatalf("splitCommand and SplitCommand disagree on %q", s)
		}
		if err != nil {
			return
		}
		if op != "" && !strings.Contains(s, op) {
			t.Fatalf("operator %q not in %q", op, s)
		}
		joined := Command(args).String()
		back, err := SplitCommand(joined)
		if err != nil || !reflect.DeepEqual(back, args) {
			t.Fatalf("SplitCommand(%q) = %q → %q → %q, %v", s, args, joined, back, err)
		}
		if _, op2, _ := splitCommand(joined); op2 != "" {
			t.Fatalf("String() left the operator %q unquoted in %q", op2, joined)
		}
	})
}
