package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestKubernetesDeploymentRolloutOnACluster judges real Deployments on the
// kubetest cluster: one whose pod starts is judged done once its pod runs
// (and serves over the bridge), and one whose container cannot start (its
// command is not in the image) is judged failed once its
// progressDeadlineSeconds passes, and progressing before.
func TestKubernetesDeploymentRolloutOnACluster(t *testing.T) {
	c := kubetest.Shared(t) // may wait for the build or another cluster first
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const image = "moorage.test/busybox:1"
	if err := c.LoadImage(ctx, image, []kubetest.ImageFile{
		{Path: "/bin/busybox", Source: "/bin/busybox", Mode: 0o755},
		{Path: "/www/index.html", Data: []byte("rollout\n")},
	}, kubetest.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	deployments := c.Client.AppsV1().Deployments("default")

	// judge polls the Deployment until it is judged final, and returns the
	// judgements it went through.
	judge := func(name string, timeout time.Duration) ([]Rollout, error) {
		var seen []Rollout
		deadline := time.Now().Add(timeout)
		for {
			d, err := deployments.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return seen, err
			}
			r := DeploymentRollout(d)
			if len(seen) == 0 || seen[len(seen)-1] != r {
				t.Logf("%s: %s: %s", time.Now().Format("15:04:05.000"), r.State, r.Message)
				seen = append(seen, r)
			}
			if r.State != RolloutProgressing {
				return seen, nil
			}
			if time.Now().After(deadline) {
				return seen, fmt.Errorf("deployment %s still progressing after %s: %s", name, timeout, r.Message)
			}
			select {
			case <-ctx.Done():
				return seen, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}

	// Done once its pod runs.
	start := time.Now()
	if _, err := deployments.Create(ctx, deployment("good", image, []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}, 60), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen, err := judge("good", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; last.State != RolloutDone {
		t.Fatalf("deployment good judged %s: %s", last.State, last.Message)
	}
	if seen[0].State != RolloutProgressing {
		t.Errorf("deployment good was judged %s at once, before its pod could run", seen[0].State)
	}
	pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=good"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods of good, want 1", len(pods.Items))
	}
	p := pods.Items[0]
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil || !p.Status.ContainerStatuses[0].Ready {
		t.Fatalf("deployment good judged done but its pod is %s: %+v", p.Status.Phase, p.Status.ContainerStatuses)
	}
	body, err := kubetest.Get(ctx, "http://"+p.Status.PodIP+":8080/index.html")
	if err != nil || strings.TrimSpace(body) != "rollout" {
		t.Fatalf("pod %s at %s: %q, %v", p.Name, p.Status.PodIP, body, err)
	}
	t.Logf("deployment good judged done in %s; its pod %s (%s) serves", time.Since(start).Round(time.Millisecond), p.Name, p.Status.PodIP)

	// Failed once its progress deadline passes.
	const deadlineSeconds = 10
	start = time.Now()
	if _, err := deployments.Create(ctx, deployment("bad", image, []string{"/bin/not-in-the-image"}, deadlineSeconds), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen, err = judge("bad", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if last := seen[len(seen)-1]; last.State != RolloutFailed || !strings.Contains(last.Message, "exceeded its progress deadline") {
		t.Fatalf("deployment bad judged %s: %s", last.State, last.Message)
	}
	if took < deadlineSeconds*time.Second {
		t.Errorf("deployment bad judged failed after %s, before its %d s deadline", took, deadlineSeconds)
	}
	for _, r := range seen[:len(seen)-1] {
		if r.State != RolloutProgressing {
			t.Errorf("deployment bad judged %s before it failed: %s", r.State, r.Message)
		}
	}
	pods, err = c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bad"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			t.Logf("pod %s: container %s ready %v, state %+v, last %+v", p.Name, cs.Name, cs.Ready, cs.State, cs.LastTerminationState)
			if cs.Ready {
				t.Errorf("pod %s of bad is ready", p.Name)
			}
		}
	}
	t.Logf("deployment bad judged failed %s after it was made (deadline %d s)", took.Round(time.Millisecond), deadlineSeconds)
}

func deployment(name, image string, command []string, progressDeadline int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To[int32](1),
			ProgressDeadlineSeconds: ptr.To(progressDeadline),
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers: []corev1.Container{{
						Name:            name,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Command:         command,
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}
