package kubetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestKubernetesClusterRunsRealContainers starts the fixture's cluster and
// proves that its kubelet runs real containers: a Deployment of an image
// built here becomes available (its readiness probe reaches the pods over
// the CNI bridge), this process fetches a page from each pod at its IP,
// and Jobs with backoffLimit 0 run to success and to failure, with their
// logs and exit codes read back through the API.
func TestKubernetesClusterRunsRealContainers(t *testing.T) {
	testStart := time.Now()
	// Cleanups run last first: this one checks what Stop left.
	t.Cleanup(func() { checkNoLeftovers(t) })
	// The deadline starts once the cluster is up: Start may wait for the
	// build (make test starts it in the background) or another cluster
	// first, bounded by go test's -timeout.
	c := Start(context.Background(), t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Logf("cluster started in %s", c.StartTime.Round(time.Millisecond))

	const image = "moorage.test/busybox:1"
	marker := fmt.Sprintf("moorage kubetest %d", time.Now().UnixNano())
	if err := c.LoadImage(ctx, image, []ImageFile{
		{Path: "/bin/busybox", Source: "/bin/busybox", Mode: 0o755},
		{Path: "/www/index.html", Data: []byte(marker + "\n")},
	}, ImageConfig{Cmd: []string{"/bin/busybox", "sh"}}); err != nil {
		t.Fatal(err)
	}

	ns := "default"
	labels := map[string]string{"app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "moorage"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:            "web",
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Command:         []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"},
						Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	step := time.Now()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 3*time.Minute, func() error {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := *d.Spec.Replicas
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
			return fmt.Errorf("deployment web: generation %d observed %d, replicas %d updated %d available %d of %d",
				d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.AvailableReplicas, want)
		}
		return nil
	}); err != nil {
		c.describePods(ctx, t, ns)
		t.Fatal(err)
	}
	t.Logf("deployment web available in %s", time.Since(step).Round(time.Millisecond))

	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods of web, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || p.Spec.NodeName != NodeName {
			t.Fatalf("pod %s: ip %q node %q", p.Name, p.Status.PodIP, p.Spec.NodeName)
		}
		url := "http://" + p.Status.PodIP + ":8080/index.html"
		body, err := Get(ctx, url)
		if err != nil {
			t.Fatalf("pod %s: %v", p.Name, err)
		}
		if strings.TrimSpace(body) != marker {
			t.Fatalf("pod %s: GET %s = %q, want %q", p.Name, url, body, marker)
		}
		t.Logf("pod %s (%s, container %s) served %q", p.Name, p.Status.PodIP, p.Status.ContainerStatuses[0].ContainerID, strings.TrimSpace(body))
	}

	// Release tasks' shape: a Job with backoffLimit 0, once to success and
	// once to failure, both at the same time.
	step = time.Now()
	jobs := map[string]struct {
		script string
		exit   int32
		cond   batchv1.JobConditionType
	}{
		"task-ok":   {"echo migrated; echo to stderr >&2; exit 0", 0, batchv1.JobComplete},
		"task-fail": {"echo migration failed; exit 3", 3, batchv1.JobFailed},
	}
	for name, j := range jobs {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{
				BackoffLimit:          ptr.To[int32](0),
				ActiveDeadlineSeconds: ptr.To[int64](120),
				Template: corev1.PodTemplateSpec{
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{
							Name:            "task",
							Image:           image,
							ImagePullPolicy: corev1.PullNever,
							Command:         []string{"/bin/busybox", "sh", "-c", j.script},
						}},
					},
				},
			},
		}
		if _, err := c.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, j := range jobs {
		if err := poll(ctx, 3*time.Minute, func() error {
			job, err := c.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cond := range job.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					continue
				}
				if cond.Type == j.cond {
					return nil
				}
				if cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed {
					return fmt.Errorf("job %s is %s (%s), want %s: %w", name, cond.Type, cond.Message, j.cond, errFinal)
				}
			}
			return fmt.Errorf("job %s: active %d succeeded %d failed %d", name, job.Status.Active, job.Status.Succeeded, job.Status.Failed)
		}); err != nil {
			c.describePods(ctx, t, ns)
			t.Fatal(err)
		}
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("job %s: %d pods, want 1 (backoffLimit 0)", name, len(pods.Items))
		}
		p := pods.Items[0]
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
			t.Fatalf("job %s: pod %s has no terminated container: %+v", name, p.Name, p.Status.ContainerStatuses)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		if term.ExitCode != j.exit {
			t.Errorf("job %s: exit code %d, want %d", name, term.ExitCode, j.exit)
		}
		logs, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("job %s: logs: %v", name, err)
		}
		wantLog := strings.SplitN(strings.TrimPrefix(j.script, "echo "), ";", 2)[0]
		if !strings.Contains(string(logs), wantLog) {
			t.Errorf("job %s: logs %q, want %q in them", name, logs, wantLog)
		}
		t.Logf("job %s: %s, exit code %d, logs %q", name, j.cond, term.ExitCode, logs)
	}
	t.Logf("jobs done in %s; whole test %s", time.Since(step).Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))
}

var errFinal = errors.New("final")

// poll calls check until it returns nil, an error wrapping errFinal, or
// timeout passes.
func poll(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil || errors.Is(err, errFinal) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// describePods logs the pods of ns with their status and events, for a
// failure's diagnosis.
func (c *Cluster) describePods(ctx context.Context, t *testing.T, ns string) {
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: phase %s ip %q conditions %+v containers %+v", p.Name, p.Status.Phase, p.Status.PodIP, p.Status.Conditions, p.Status.ContainerStatuses)
	}
	events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("list events: %v", err)
		return
	}
	for _, e := range events.Items {
		t.Logf("event %s %s/%s: %s: %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
}

func checkNoLeftovers(t *testing.T) {
	t.Helper()
	if left := leftovers(filepath.Join(os.TempDir(), dirName)); len(left) > 0 {
		t.Errorf("the stopped cluster left:\n%s", strings.Join(left, "\n"))
	}
}

func runningPod(name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{
				Name:            "sleep",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"/bin/busybox", "sleep", "3600"},
			}},
		},
	}
}

// TestKubernetesFixtureCleansUpAfterAKilledRun kills (SIGKILL) a test
// process whose cluster runs a pod, sees what that leaves on the machine
// (containerd's shims, the container, its mounts, the bridge), and checks
// that the next Start removes it all and starts a working cluster.
func TestKubernetesFixtureCleansUpAfterAKilledRun(t *testing.T) {
	if os.Getenv("KUBETEST_KILLED_CHILD") == "1" {
		killedChild(t)
		return
	}
	if err := Requirements(); err != nil {
		if os.Getenv("MOORAGE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOORAGE_REQUIRE_DOCKER=1 but a Kubernetes cluster cannot run here: %v", err)
		}
		t.Skipf("no Kubernetes cluster here: %v", err)
	}
	// The build (make test starts it in the background) is waited for
	// before the deadline starts.
	if _, err := Binaries(context.Background(), t.Logf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKubernetesFixtureCleansUpAfterAKilledRun$", "-test.v")
	child.Env = append(os.Environ(), "KUBETEST_KILLED_CHILD=1")
	var childOut strings.Builder
	child.Stderr = &childOut
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			childOut.WriteString(sc.Text() + "\n")
			if strings.TrimSpace(sc.Text()) == "KUBETEST-CHILD-READY" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = child.Wait()
			t.Fatalf("the child test ended before its pod ran:\n%s", childOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("the child test: %v:\n%s", ctx.Err(), childOut.String())
	}
	_ = child.Process.Kill()
	_ = child.Wait()

	left := leftovers(filepath.Join(os.TempDir(), dirName))
	t.Logf("a killed run left %d things, among them:\n%s", len(left), strings.Join(left[:min(len(left), 12)], "\n"))
	if !strings.Contains(strings.Join(left, "\n"), "containerd-shim") {
		t.Errorf("the killed run left no containerd shim: was its pod running?\n%s", strings.Join(left, "\n"))
	}

	t.Cleanup(func() { checkNoLeftovers(t) })
	c := Start(ctx, t)
	pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("the new cluster has %d pods of the killed one's", len(pods.Items))
	}
	// And it works: a pod runs.
	const image = "moorage.test/busybox:1"
	if err := c.LoadImage(ctx, image, []ImageFile{{Path: "/bin/busybox", Source: "/bin/busybox", Mode: 0o755}}, ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, runningPod("after", image), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitPodRunning(ctx, c, "after"); err != nil {
		c.describePods(ctx, t, "default")
		t.Fatal(err)
	}
}

// killedChild is the child of TestKubernetesFixtureCleansUpAfterAKilledRun:
// a cluster with a running pod, then it waits to be killed.
func killedChild(t *testing.T) {
	ctx := context.Background()
	bin, err := Binaries(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCluster(ctx, bin, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	const image = "moorage.test/busybox:1"
	if err := c.LoadImage(ctx, image, []ImageFile{{Path: "/bin/busybox", Source: "/bin/busybox", Mode: 0o755}}, ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, runningPod("before", image), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitPodRunning(ctx, c, "before"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("KUBETEST-CHILD-READY")
	time.Sleep(10 * time.Minute)
}

func waitPodRunning(ctx context.Context, c *Cluster, name string) error {
	return poll(ctx, 3*time.Minute, func() error {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod %s is %s", name, p.Status.Phase)
		}
		return nil
	})
}
