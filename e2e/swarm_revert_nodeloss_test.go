package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// The node that runs the new release's scheduler is lost after the
// deploy's cutover (a power cut: its dockerd and every task on it die, and
// the manager marks it down), and the deploy then fails: its web crashes
// in the monitor window. The revert cannot know whether v2's scheduler
// still runs, so it does not start v1's (a second must never start), and
// completes the rest: the web is routed back to v1, v1's worker runs
// again, v2's web is drained. The deploy's error and record name the node
// and what to do. Once the node is back, v2's scheduler does not run
// again, and the next deploy starts a single scheduler.
func swarmRevertWithSchedulerNodeLost(t *testing.T) {
	s := startServerRT(t, "swarm")
	app := s.helloSchedulerOnNode2(t)

	// v2's web crashes once it has answered two requests, which the test
	// sends only after node2 is lost; its monitor window outlasts that.
	crashy := "env:\n  HELLO_CRASH_AFTER_REQUESTS: \"2\"\n"
	editSpec(t, app, "monitor: 1s", "monitor: 4m", "release:", crashy+"release:")
	setMessage(t, app, "crashy")
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := s.run("deploy", app, "--runtime", "swarm")
		done <- result{out + errOut, code}
	}()
	deploying := func() {
		select {
		case r := <-done:
			t.Fatalf("the deploy ended too early (exit %d):\n%s", r.code, r.out)
		default:
		}
	}
	waitFor(t, 4*time.Minute, "v2's scheduler to run on node2 (the deploy past its cutover)", func() error {
		deploying()
		for _, in := range s.ps("hello").Instances {
			if in.Service == "scheduler" && in.Release == "v2" && in.State == "running" && in.Node == "node2" {
				return nil
			}
		}
		return errors.New("not yet")
	})

	n2 := s.swarm.Nodes[2]
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := s.swarm.WaitNodeState(ctx, n2, swarm.NodeStateDown); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "moorage ps to show v2's scheduler on a node that is down", func() error {
		deploying()
		for _, in := range s.ps("hello").Instances {
			if in.Service == "scheduler" && in.Release == "v2" && in.Down && in.Node == "node2" {
				return nil
			}
		}
		return errors.New("not yet")
	})

	// Traffic makes v2's web crash: the monitor fails the deploy, which
	// reverts to v1.
	var res result
	waitFor(t, 4*time.Minute, "the deploy to fail and revert", func() error {
		select {
		case res = <-done:
			return nil
		default:
		}
		s.get("/")
		return errors.New("still deploying")
	})
	t.Logf("the deploy:\n%s", res.out)
	if res.code != 1 {
		t.Fatalf("deploy exit %d, want 1:\n%s", res.code, res.out)
	}
	for _, want := range []string{"the singleton scheduler of v1 was not started again", "hello-scheduler-v2-1 is on node node2, which is down",
		"a second one must never start", "bring node node2 back", "docker node rm --force node2", "then deploy or roll back again"} {
		if !strings.Contains(res.out, want) {
			t.Errorf("the deploy's output lacks %q:\n%s", want, res.out)
		}
	}
	if strings.Contains(res.out, "restoring the previous state failed") {
		t.Errorf("the revert did not complete:\n%s", res.out)
	}
	var ds []struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Steps  []struct {
			Name    string `json:"name"`
			Detail  string `json:"detail"`
			Outcome string `json:"outcome"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	if ds[0].Status != "rolled_back" || !strings.Contains(ds[0].Reason, "node node2, which is down") || !strings.Contains(ds[0].Reason, "docker node rm --force node2") {
		t.Errorf("deploy record: %s: %s", ds[0].Status, ds[0].Reason)
	}
	ran := map[string]string{}
	for _, st := range ds[0].Steps {
		ran[st.Name] = st.Outcome
		if st.Name == "revert:singleton" && !strings.Contains(st.Detail, "not started again") {
			t.Errorf("revert's singleton step: %s", st.Detail)
		}
	}
	for _, step := range []string{"revert:cutover", "revert:singleton", "revert:start", "revert:drain", "revert:activate"} {
		if ran[step] != "ok" {
			t.Errorf("step %s: %q, want ok (steps: %v)", step, ran[step], ran)
		}
	}

	// v1 serves again, with its worker; no scheduler but v2's lost one.
	s.waitBody("/", "message=before")
	st := s.ps("hello")
	if st.Active != "v1" {
		t.Fatalf("active %s after the revert, want v1", st.Active)
	}
	workers := 0
	for _, in := range st.Instances {
		switch {
		case in.Service == "worker" && in.Release == "v1" && in.State == "running":
			workers++
		case in.Service == "scheduler" && in.Release == "v1" && in.State != "exited":
			t.Errorf("v1's scheduler was started while v2's may still run: %+v", in)
		case in.Kind == "service" && in.Release == "v2" && in.Service != "scheduler":
			t.Errorf("%s of the failed deploy is still there: %+v", in.ID, in)
		}
	}
	if workers != 1 {
		t.Errorf("%d v1 workers run after the revert, want 1:\n%+v", workers, st.Instances)
	}
	if c := volumeFile(s, "hello", "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
	if n := strings.Count(volumeFile(s, "hello", "scheduler.log"), "start "); n != 2 {
		t.Fatalf("%d scheduler starts by the end of the revert, want v1's and v2's:\n%s", n, volumeFile(s, "hello", "scheduler.log"))
	}

	// While node2 is down, a deploy would be refused, and its dry run
	// says so.
	out, errOut, code := s.run("deploy", app, "--runtime", "swarm", "--dry-run")
	if code != 0 || !strings.Contains(out+errOut, "it would be refused before anything changes: cannot replace the singleton scheduler: hello-scheduler-v2-1 runs on node node2, which is down") {
		t.Errorf("dry run while node2 is down: exit %d\n%s%s", code, out, errOut)
	}

	// The node comes back: v2's scheduler, told to stop, stays stopped.
	s.restartNode(ctx, n2)
	waitFor(t, 2*time.Minute, "v2's scheduler seen stopped on node2", func() error {
		for _, in := range s.ps("hello").Instances {
			if in.Service == "scheduler" && (in.Down || in.State != "exited") {
				return fmt.Errorf("%+v", in)
			}
		}
		return nil
	})

	// The next deploy starts one scheduler, on node2.
	editSpec(t, app, "monitor: 4m", "monitor: 1s", crashy, "")
	setMessage(t, app, "after")
	s.deploy(app, 0)
	s.waitBody("/", "message=after")
	var scheds []psInstance
	for _, in := range s.ps("hello").Instances {
		if in.Service == "scheduler" && in.State != "exited" {
			scheds = append(scheds, in)
		}
	}
	if len(scheds) != 1 || scheds[0].Release != "v3" || scheds[0].Node != "node2" {
		t.Fatalf("schedulers after the node came back and v3 deployed: %+v", scheds)
	}
	if c := volumeFile(s, "hello", "scheduler-conflicts.log"); c != "" {
		t.Fatalf("two schedulers were alive at once:\n%s", c)
	}
	log := volumeFile(s, "hello", "scheduler.log")
	var starts []string
	for _, l := range scanLines(log) {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "start" {
			starts = append(starts, f[2])
		}
	}
	if !slices.Equal(starts, []string{"v1", "v2", "v3"}) {
		t.Fatalf("scheduler starts %v, want v1, v2 (lost with node2, never again) and v3:\n%s", starts, log)
	}
}
