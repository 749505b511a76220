package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// moorage check's throwaway build gets the environment a deploy's build
// gets: config values literal ($ and all), the spec's env expanded, and
// what a build cannot have said, not dropped in silence.
func TestCheckBuildsWithTheDeploysEnv(t *testing.T) {
	e := processEngine(t)
	ctx := context.Background()
	const yaml = `app: envs
runtime: process
env:
  GREETING: hello-$MOORAGE_APP
  LISTEN: 127.0.0.1:$PORT
build:
  command: sh -c 'echo "BUILD-ENV [$$GREETING] [$$PRICE] [$${LISTEN-unset}]"'
services:
  worker:
    command: sleep 300
    min_ready: 50ms
deploy:
  monitor: 0s
`
	sp, err := spec.Parse("moorage.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.EnsureApp(ctx, "envs", "process"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetConfig(ctx, "envs", []store.ConfigVar{{Key: "PRICE", Value: []byte("5 $HOME $$")}}, nil); err != nil {
		t.Fatal(err)
	}
	tree := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "moorage.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	buildLines := func(out string) []string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "BUILD-ENV") || strings.Contains(l, "left out") {
				got = append(got, strings.TrimSpace(l[strings.Index(l, strings.Fields(l)[0]):]))
			}
		}
		return got
	}

	res, err := e.RunInBuild(ctx, InBuildRequest{Spec: sp, ContextDir: tree()})
	if err != nil || res.BuildErr != nil {
		t.Fatalf("check build: %v %v\n%s", err, res.BuildErr, res.BuildOutput)
	}
	check := buildLines(res.BuildOutput)

	op := e.Deploy(DeployRequest{Spec: sp, SpecYAML: yaml, ContextDir: tree(), Owner: "test"})
	if status, _ := finish(t, op); status != store.DeploySucceeded {
		t.Fatalf("deploy %s", status)
	}
	d, err := e.st.GetDeploy(ctx, op.DeployID())
	if err != nil {
		t.Fatal(err)
	}
	var deploy []string
	for _, s := range d.Steps {
		if s.Name == "build" {
			deploy = buildLines(s.Output)
		}
	}
	want := []string{
		"note: LISTEN (refers to $PORT, which only instances have) is left out of the build's environment",
		"BUILD-ENV [hello-envs] [5 $HOME $$] [unset]",
	}
	if strings.Join(check, "\n") != strings.Join(want, "\n") {
		t.Errorf("moorage check's build saw:\n%s\nwant:\n%s", strings.Join(check, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(deploy, "\n") != strings.Join(want, "\n") {
		t.Errorf("the deploy's build saw:\n%s\nwant:\n%s", strings.Join(deploy, "\n"), strings.Join(want, "\n"))
	}
}
