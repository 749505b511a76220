package swarmtest

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// releaseJob is a release task as the swarm runtime would create it: a
// replicated-job of one completion, never restarted, labelled with its app,
// release and task.
func releaseJob(name, image, script string, labels map[string]string, restart *swarm.RestartPolicy) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Command: []string{"/bin/sh", "-c", script}, Env: webEnv, Labels: labels},
			RestartPolicy: restart,
		},
		Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: u64(1), TotalCompletions: u64(1)}},
	}
}

var never = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}

func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateShutdown, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// testReleaseJob (TestSwarmShared/ReleaseJob): a release task is a replicated-job that runs once in
// the release's image; its exit code and output are read through the SDK;
// a failing one is seen as failed and not retried (restart condition none;
// with Swarm's default policy it is run again); live jobs of an app are
// found again by label, as a restarted server must.
func testReleaseJob(t *testing.T, c *Cluster, img *Image) {
	ctx := ctxT(t, 4*time.Minute)
	cli := c.Client()
	labels := func(task string) map[string]string {
		return map[string]string{"moorage.app": "demo", "moorage.release": "v2", "moorage.kind": "release", "moorage.task": task}
	}

	// Success: exit 0, stdout and stderr apart.
	begin := time.Now()
	ok := createService(t, ctx, cli, releaseJob("demo-v2-migrate", img.ID,
		`echo "migrating on $NODE"; echo "a warning" >&2; exit 0`, labels("migrate"), never))
	ts := waitTasks(t, ctx, cli, ok, "job completes", func(ts []swarm.Task) bool {
		return len(ts) == 1 && terminal(ts[0].Status.State)
	})
	took := time.Since(begin)
	tk := ts[0]
	if tk.Status.State != swarm.TaskStateComplete || tk.Status.ContainerStatus == nil || tk.Status.ContainerStatus.ExitCode != 0 {
		t.Fatalf("ok job: %s", describe(ts))
	}
	stdout, stderr, err := taskLogs(ctx, cli, tk.ID)
	if err != nil {
		t.Fatalf("task logs: %v", err)
	}
	if !strings.HasPrefix(stdout, "migrating on node") || stderr != "a warning\n" {
		t.Fatalf("ok job logs: stdout %q stderr %q", stdout, stderr)
	}
	figure(t, "replicated-job create → complete (exit 0) in %s on %s; logs through the manager: stdout %q stderr %q",
		took.Round(time.Millisecond), c.Node(tk.NodeID).Name, stdout, stderr)

	// Failure: exit 3, seen as failed with the code; one task only.
	begin = time.Now()
	bad := createService(t, ctx, cli, releaseJob("demo-v2-bad", img.ID, `echo "boom"; exit 3`, labels("bad"), never))
	ts = waitTasks(t, ctx, cli, bad, "job fails", func(ts []swarm.Task) bool {
		return len(ts) == 1 && terminal(ts[0].Status.State)
	})
	took = time.Since(begin)
	tk = ts[0]
	if tk.Status.State != swarm.TaskStateFailed || tk.Status.ContainerStatus == nil || tk.Status.ContainerStatus.ExitCode != 3 {
		t.Fatalf("failing job: %s", describe(ts))
	}
	stdout, _, _ = taskLogs(ctx, cli, tk.ID)
	figure(t, "failing replicated-job (exit 3): state %q, Err %q, ExitCode %d, after %s; stdout %q",
		tk.Status.State, tk.Status.Err, tk.Status.ContainerStatus.ExitCode, took.Round(time.Millisecond), stdout)

	// Swarm's default restart policy (any condition, no limit) would run a
	// failing migration again and again.
	begin = time.Now()
	again := createService(t, ctx, cli, releaseJob("demo-v2-default-restart", img.ID, `exit 3`, labels("again"), nil))
	ts = waitTasks(t, ctx, cli, again, "a failed job is retried under the default restart policy", func(ts []swarm.Task) bool {
		failed := 0
		for _, tk := range ts {
			if tk.Status.State == swarm.TaskStateFailed {
				failed++
			}
		}
		return failed >= 2
	})
	figure(t, "default restart policy: a failing job ran a second time %s after creation (%d tasks): release tasks need RestartPolicy{Condition: none}",
		time.Since(begin).Round(time.Millisecond), len(ts))
	if _, err := cli.ServiceRemove(ctx, again, client.ServiceRemoveOptions{}); err != nil {
		t.Fatal(err)
	}

	// A job still running when the server "crashed": found by label.
	live := createService(t, ctx, cli, releaseJob("demo-v2-slow", img.ID, `sleep 300`, labels("slow"), never))
	ts = waitTasks(t, ctx, cli, live, "slow job runs", func(ts []swarm.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == swarm.TaskStateRunning
	})
	figure(t, "a running job's task has DesiredState %q (not running): find live jobs by observed state", ts[0].DesiredState)
	svcs, err := cli.ServiceList(ctx, client.ServiceListOptions{
		Filters: make(client.Filters).Add("label", "moorage.app=demo", "moorage.kind=release"),
		Status:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, s := range svcs.Items {
		if s.Spec.Mode.ReplicatedJob == nil {
			continue
		}
		// A job is live while a task of it has not reached a final state.
		tasks, err := tasksOf(ctx, cli, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			if !terminal(tk.Status.State) {
				found = append(found, s.Spec.Labels["moorage.task"])
				break
			}
		}
		t.Logf("job %s: status %+v job status %+v", s.Spec.Name, s.ServiceStatus, s.JobStatus)
	}
	if len(found) != 1 || found[0] != "slow" {
		t.Fatalf("live release jobs of demo: %v, want [slow]", found)
	}
	figure(t, "live jobs by label: ServiceList(label moorage.app=demo, moorage.kind=release) then TaskList(service) with a task not in a final state finds exactly the running one")

	// The failed job was never run again.
	ts, err = tasksOf(ctx, cli, bad)
	if err != nil || len(ts) != 1 {
		t.Fatalf("failing job with restart none: %d tasks (%v), want 1: %s", len(ts), err, describe(ts))
	}
}
