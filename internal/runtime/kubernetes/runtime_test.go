package kubernetes

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/moorage/moorage/internal/runtime"
)

func testPod(restarts int32, state corev1.ContainerState, last *corev1.ContainerStateTerminated) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			UID:         types.UID("pod-1"),
			Labels:      map[string]string{LabelApp: "hello", LabelService: "web", LabelRelease: "v1", LabelKind: KindService},
			Annotations: map[string]string{annInstance: "hello-web-v1-1"},
		},
		Status: corev1.PodStatus{PodIP: "10.0.0.5", ContainerStatuses: []corev1.ContainerStatus{{
			Name: containerName, RestartCount: restarts, State: state, Ready: state.Running != nil,
			LastTerminationState: corev1.ContainerState{Terminated: last},
		}}},
	}
}

// The watch turns what the kubelet reports of a container into one crash
// and one restart per exit, whichever states it was seen in.
func TestKubernetesWatchEvents(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	exit3 := &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	cases := []struct {
		name  string
		steps []*corev1.Pod
		want  []runtime.InstanceEvent
	}{
		{"terminated then restarted", []*corev1.Pod{
			testPod(0, running, nil),
			testPod(0, corev1.ContainerState{Terminated: exit3}, nil),
			testPod(1, running, exit3),
		}, []runtime.InstanceEvent{{Type: runtime.EventCrash, ExitCode: 3, Restarts: 0}, {Type: runtime.EventRestart, Restarts: 1}}},
		{"restart seen only", []*corev1.Pod{
			testPod(0, running, nil),
			testPod(1, running, exit3),
		}, []runtime.InstanceEvent{{Type: runtime.EventCrash, ExitCode: 3, Restarts: 0}, {Type: runtime.EventRestart, Restarts: 1}}},
		{"crash loop", []*corev1.Pod{
			testPod(0, running, nil),
			testPod(1, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, exit3),
			testPod(2, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, exit3),
		}, []runtime.InstanceEvent{
			{Type: runtime.EventCrash, ExitCode: 3, Restarts: 0}, {Type: runtime.EventRestart, Restarts: 1},
			{Type: runtime.EventCrash, ExitCode: 3, Restarts: 1}, {Type: runtime.EventRestart, Restarts: 2},
			{Type: runtime.EventCrash, ExitCode: 3, Restarts: 2},
		}},
		{"adopted with restarts: nothing new", []*corev1.Pod{
			testPod(4, running, exit3),
			testPod(4, running, exit3),
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &Runtime{events: runtime.NewBroker(), ctx: ctx}
			r.life.Shut() // no log copiers
			ch := r.events.Subscribe(ctx)
			seen := map[types.UID]*podSeen{}
			for i, p := range c.steps {
				r.observe(seen, p, i == 0)
			}
			var got []runtime.InstanceEvent
		read:
			for {
				select {
				case ev := <-ch:
					got = append(got, ev)
				case <-time.After(200 * time.Millisecond):
					break read
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("events %+v, want %+v", got, c.want)
			}
			for i, w := range c.want {
				g := got[i]
				if g.Type != w.Type || g.ExitCode != w.ExitCode || g.Restarts != w.Restarts || g.Instance != "hello-web-v1-1" || g.App != "hello" || g.Kind != runtime.KindService {
					t.Errorf("event %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// List's state of an instance, from its workload and pod.
func TestKubernetesInstanceState(t *testing.T) {
	w := &workload{meta: metav1.ObjectMeta{
		Labels:      map[string]string{LabelApp: "hello", LabelService: "web", LabelRelease: "v1", LabelKind: KindService, LabelIndex: "2"},
		Annotations: map[string]string{annInstance: "hello-web-v1-2", annPort: "8080", annHash: "h"},
	}, replicas: 1}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(100, 0))}}
	pod := testPod(2, running, &corev1.ContainerStateTerminated{ExitCode: 3})
	pod.Spec.NodeName = "node-a"
	in := instanceOf(w, []*corev1.Pod{pod})
	if in.ID != "hello-web-v1-2" || in.Index != 2 || in.Hash != "h" || in.State != runtime.StateRunning || in.Addr != "10.0.0.5:8080" ||
		in.Restarts != 2 || in.ExitCode != 3 || in.Node != "node-a" || !in.StartedAt.Equal(time.Unix(100, 0)) || in.Host != "10.0.0.5" || in.Port != 8080 {
		t.Errorf("running: %+v", in)
	}
	// A container that runs but whose readiness probe has not passed (or
	// fails) is running: the engine gates on the same check itself.
	unready := testPod(2, running, nil)
	unready.Status.ContainerStatuses[0].Ready = false
	if in := instanceOf(w, []*corev1.Pod{unready}); in.State != runtime.StateRunning || in.Addr != "10.0.0.5:8080" {
		t.Errorf("running, not ready: %+v", in)
	}
	back := testPod(2, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, &corev1.ContainerStateTerminated{ExitCode: 3})
	if in := instanceOf(w, []*corev1.Pod{back}); in.State != runtime.StateRestarting || in.Addr != "" {
		t.Errorf("crash loop: %+v", in)
	}
	if in := instanceOf(w, nil); in.State != runtime.StateRestarting {
		t.Errorf("no pod yet: %+v", in)
	}
	w.replicas = 0
	w.meta.Annotations[annExit] = "0"
	if in := instanceOf(w, nil); in.State != runtime.StateExited {
		t.Errorf("stopped: %+v", in)
	}
}

// Object names stay DNS labels, and an accessory's fits a StatefulSet.
func TestKubernetesInstanceNames(t *testing.T) {
	long := "a-very-long-application-name-that-goes-on-web-v12-3-and-on-and-on"
	if n := instanceName(long, runtime.KindService); len(n) > MaxNameLength || n == instanceName(long+"x", runtime.KindService) {
		t.Errorf("service name %q", n)
	}
	if n := instanceName(long, runtime.KindAccessory); len(n) > MaxStatefulSetNameLength {
		t.Errorf("accessory name %q", n)
	}
	if n := instanceName("hello-web-v1-1", runtime.KindService); n != "hello-web-v1-1" {
		t.Errorf("short name changed: %q", n)
	}
}

// A one-off's Job left by an earlier server is waited for while it runs,
// and deleted once over, before a new one of the same id is made.
func TestKubernetesClearJobs(t *testing.T) {
	r := &Runtime{opts: RuntimeOptions{Prefix: "moorage"}, log: slog.New(slog.DiscardHandler)}
	name := instanceName("hello-release-v2-1", runtime.KindTask)
	job := func(conds ...batchv1.JobCondition) *batchv1.Job {
		l := Labels("hello", "release", "v2", KindTask)
		l[LabelPrefix], l[LabelInstance] = "moorage", name
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "moorage-hello", Labels: l}, Status: batchv1.JobStatus{Conditions: conds}}
	}
	live := job()
	r.cs = fake.NewClientset(live)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := r.clearJobs(ctx, "moorage-hello", name); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a live Job: %v, want a wait until the context ends", err)
	}
	if _, err := r.cs.BatchV1().Jobs("moorage-hello").Get(context.Background(), name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the live Job was touched: %v", err)
	}
	r.cs = fake.NewClientset(job(batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}))
	if err := r.clearJobs(context.Background(), "moorage-hello", name); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cs.BatchV1().Jobs("moorage-hello").Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the finished Job is still there: %v", err)
	}
}

// A container waiting for a reason that may pass (a secret the kubelet's
// cache has not synced) is given time; one that never passes fails at once.
func TestKubernetesStartJudge(t *testing.T) {
	var j startJudge
	cfg := &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "failed to sync secret cache"}
	if j.failed(cfg) {
		t.Error("a first CreateContainerConfigError failed the start")
	}
	j.since = time.Now().Add(-startPatience - time.Second)
	if !j.failed(cfg) {
		t.Error("a CreateContainerConfigError lasting past the patience did not fail the start")
	}
	if j.failed(nil) || !j.since.IsZero() {
		t.Error("a container no longer waiting is not reset")
	}
	if !j.failed(&corev1.ContainerStateWaiting{Reason: "InvalidImageName"}) {
		t.Error("InvalidImageName did not fail at once")
	}
	if j.failed(&corev1.ContainerStateWaiting{Reason: "ContainerCreating"}) {
		t.Error("ContainerCreating failed the start")
	}
}

// With a volume directory, a volume is a hostPath PersistentVolume bound to
// its claim by name, in the app's namespace; a PersistentVolume of that
// name that is not moorage's is never touched.
func TestKubernetesEnsureVolumeHostPath(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r := &Runtime{opts: RuntimeOptions{Prefix: "moorage", VolumeDir: dir}, log: slog.New(slog.DiscardHandler), nsDone: map[string]bool{}}
	r.cs = fake.NewClientset()
	if err := r.EnsureVolume(ctx, "hello", "data"); err != nil {
		t.Fatal(err)
	}
	claim, err := r.cs.CoreV1().PersistentVolumeClaims("moorage-hello").Get(ctx, VolumeClaimName("hello", "data"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := r.cs.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.VolumePath(ctx, "hello", "data")
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != want || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Name != claim.Name || !r.owned(pv) || !r.owned(claim) {
		t.Errorf("volume %+v for claim %+v", pv.Spec, claim.Spec)
	}
	if ns, err := r.cs.CoreV1().Namespaces().Get(ctx, "moorage-hello", metav1.GetOptions{}); err != nil || ns.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("namespace %+v %v", ns, err)
	}

	r.cs = fake.NewClientset(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: objectName("", "moorage-hello", "volume", "data")}})
	r.nsDone = map[string]bool{}
	if err := r.EnsureVolume(ctx, "hello", "data"); err == nil || !strings.Contains(err.Error(), "not moorage's") {
		t.Errorf("with someone else's PersistentVolume of that name: %v", err)
	}
}
