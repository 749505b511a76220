package spec

import (
	"strings"
	"testing"
	"time"
)

func TestPipelineTestKey(t *testing.T) {
	s, err := Parse("moorage.yaml", []byte(`app: x
runtime: process
secrets: [A]
test:
  commands: [./run-tests, {command: ./slow, timeout: 1m}]
  env: {MODE: test}
  secrets: [A]
services:
  web: {command: ./web}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Test.Commands) != 2 || s.Test.Commands[0].Timeout != DefaultReleaseTimeout || s.Test.Commands[1].Timeout != time.Minute ||
		s.Test.Env["MODE"] != "test" || len(s.Test.Secrets) != 1 {
		t.Fatalf("test: %+v", s.Test)
	}
	s, err = Parse("moorage.yaml", []byte("app: x\nruntime: process\ntest: [./run-tests]\nservices:\n  web: {command: ./web}\n"))
	if err != nil || len(s.Test.Commands) != 1 || s.Test.Commands[0].Command[0] != "./run-tests" {
		t.Fatalf("list form: %+v %v", s, err)
	}
	_, err = Parse("moorage.yaml", []byte("app: x\nruntime: process\ntest: {commands: [./t], secrets: [B], bogus: 1}\nservices:\n  web: {command: ./web}\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) || !strings.Contains(err.Error(), "names B, which is not in the spec's secrets") {
		t.Fatalf("bad test: %v", err)
	}
}
