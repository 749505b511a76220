package kubernetes

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/testutil/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// clusterSpec is a small app for the kubetest cluster: a release task and
// a web service of two replicas, in an image of busybox alone. The web
// command writes what its environment says (release, a config value, the
// length of a secret) into the page it serves, so a request shows which
// release answered and with which config.
const clusterSpec = `
app: kman
runtime: docker
image: moorage.test/kman:1
env:
  GREETING: from the spec
secrets: [TOKEN]
release:
  - /bin/busybox sh -c "echo migrating $MOORAGE_RELEASE; echo to stderr >&2"
services:
  web:
    command: >-
      /bin/busybox sh -c "mkdir -p /tmp/www &&
      echo release=$MOORAGE_RELEASE greeting=$GREETING token_len=$${#TOKEN} > /tmp/www/index.html &&
      echo ok > /tmp/www/healthz &&
      exec /bin/busybox httpd -f -p $PORT -h /tmp/www"
    replicas: 2
    health: {path: /healthz, interval: 1s}
accessories:
  store:
    image: moorage.test/kman:1
    command: >-
      /bin/busybox sh -c "date >> /data/boots &&
      echo token_len=$${#TOKEN} > /data/token &&
      exec /bin/busybox httpd -f -p 7000 -h /data"
    port: 7000
    secrets: [TOKEN]
    volumes: [storedata:/data]
    health: {tcp: true, interval: 1s}
deploy:
  drain_timeout: 1s
`

// TestKubernetesManifestsOnACluster applies the objects of two releases
// of a small app to the kubetest cluster by server-side apply (field
// manager moorage), as the runtime will: each release's task Job
// completes and its logs are read; each release's web Deployment is judged
// done by DeploymentRollout; its pods answer over HTTP at their IPs with
// their release's config and secret; the web Service selects the first
// release, then the second in one apply, and its EndpointSlices follow;
// the accessory's StatefulSet runs on a claim from its template, and the
// second release's apply does not restart it;
// the first release's ConfigMap refuses a change; applying a Job again
// does not run its task again.
func TestKubernetesManifestsOnACluster(t *testing.T) {
	c := kubetest.Shared(t) // may wait for the build or another cluster first
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.LoadImage(ctx, "moorage.test/kman:1", []kubetest.ImageFile{
		{Path: "/bin/busybox", Source: "/bin/busybox", Mode: 0o755},
	}, kubetest.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	const ns = "kman"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.ParseFor("moorage.yaml", []byte(clusterSpec), spec.RuntimeDocker)
	if err != nil {
		t.Fatal(err)
	}
	release := func(version int, greeting, token string) *Objects {
		objs, err := Manifests(Release{
			App: "kman", Version: version, Spec: sp, Image: "moorage.test/kman:1",
			Config:  map[string]string{"GREETING": greeting},
			Secrets: map[string]string{"TOKEN": token},
		}, Options{Namespace: ns, PullPolicy: corev1.PullNever})
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	v1, v2 := release(1, "one", "tok"), release(2, "two", "token")

	// The accessory: its claim, from the StatefulSet's volumeClaimTemplate,
	// binds to a hostPath volume made here (the cluster has no
	// provisioner).
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "kman-pv"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: DefaultVolumeSize},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(c.Dir, "kman-pv"), Type: ptr.To(corev1.HostPathDirectoryOrCreate),
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	applyAll(ctx, t, c.Client, v1.AccessorySecrets[0], v1.AccessoryServices[0], v1.StatefulSets[0])
	store := waitAccessory(ctx, t, c.Client, ns, v1.StatefulSets[0].Name)
	if body, err := kubetest.Get(ctx, "http://"+store.Status.PodIP+":7000/token"); err != nil || strings.TrimSpace(body) != "token_len=3" {
		t.Fatalf("accessory pod %s: %q, %v", store.Name, body, err)
	}
	pvc, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "storedata-kman-store-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Labels[LabelManagedBy] != ManagedBy {
		t.Fatalf("claim %s: %s, labels %v", pvc.Name, pvc.Status.Phase, pvc.Labels)
	}
	t.Logf("accessory %s ready on claim %s (%s) after %s", store.Name, pvc.Name, pvc.Status.Phase, time.Since(start).Round(time.Millisecond))

	deploy := func(objs *Objects, rel, want string) (pods []string) {
		t.Helper()
		start := time.Now()
		applyAll(ctx, t, c.Client, objs.ConfigMap, objs.Secret)

		// The release task: its Job completes, its logs are readable.
		job := objs.Jobs[0]
		applyAll(ctx, t, c.Client, job)
		j := waitJob(ctx, t, c.Client, ns, job.Name)
		logs := jobLogs(ctx, t, c.Client, ns, j)
		if !strings.Contains(logs, "migrating "+rel) || !strings.Contains(logs, "to stderr") {
			t.Fatalf("job %s logs: %q", job.Name, logs)
		}
		t.Logf("%s: job %s complete after %s; logs %q", rel, job.Name, time.Since(start).Round(time.Millisecond), logs)

		// Applying it again does not run the task again.
		applyAll(ctx, t, c.Client, job)
		again, err := c.Client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.UID != j.UID || again.Status.Succeeded != 1 || again.Status.Active != 0 {
			t.Fatalf("job %s applied again: uid %s (was %s), succeeded %d, active %d", job.Name, again.UID, j.UID, again.Status.Succeeded, again.Status.Active)
		}

		// The web Deployment: judged done, its pods serve.
		d := objs.Deployments[0]
		applyAll(ctx, t, c.Client, d)
		waitRollout(ctx, t, c.Client, ns, d.Name)
		t.Logf("%s: deployment %s done after %s", rel, d.Name, time.Since(start).Round(time.Millisecond))
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 {
			t.Fatalf("%d pods of %s, want 2", len(list.Items), d.Name)
		}
		for _, p := range list.Items {
			body, err := kubetest.Get(ctx, "http://"+p.Status.PodIP+":8080/")
			if err != nil || strings.TrimSpace(body) != want {
				t.Fatalf("pod %s at %s: %q, %v; want %q", p.Name, p.Status.PodIP, body, err, want)
			}
			pods = append(pods, p.Status.PodIP)
		}
		slices.Sort(pods)
		return pods
	}

	v1Pods := deploy(v1, "v1", "release=v1 greeting=one token_len=3")
	start = time.Now()
	applyAll(ctx, t, c.Client, v1.Services[0])
	waitEndpoints(ctx, t, c.Client, ns, v1.Services[0].Name, v1Pods)
	t.Logf("v1: Service %s selects v1's pods %v after %s", v1.Services[0].Name, v1Pods, time.Since(start).Round(time.Millisecond))

	v2Pods := deploy(v2, "v2", "release=v2 greeting=two token_len=5")
	// v1's pods still serve, unrouted-to-be, while v2 starts beside them.
	start = time.Now()
	applyAll(ctx, t, c.Client, v2.Services[0])
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, v2.Services[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[LabelRelease] != "v2" || svc.Labels[LabelRelease] != "v2" {
		t.Fatalf("Service %s after the flip: selector %v, labels %v", svc.Name, svc.Spec.Selector, svc.Labels)
	}
	waitEndpoints(ctx, t, c.Client, ns, svc.Name, v2Pods)
	t.Logf("v2: Service %s flipped to v2's pods %v in %s", svc.Name, v2Pods, time.Since(start).Round(time.Millisecond))
	for _, ip := range v2Pods {
		if body, err := kubetest.Get(ctx, "http://"+ip+":8080/"); err != nil || !strings.HasPrefix(body, "release=v2 greeting=two") {
			t.Fatalf("v2 endpoint %s: %q, %v", ip, body, err)
		}
	}
	// The old release stays warm, with its own config, for a rollback.
	for _, ip := range v1Pods {
		if body, err := kubetest.Get(ctx, "http://"+ip+":8080/"); err != nil || !strings.HasPrefix(body, "release=v1 greeting=one") {
			t.Fatalf("v1 pod %s after the flip: %q, %v", ip, body, err)
		}
	}

	// The next release's accessory objects change nothing of the
	// StatefulSet: its pod was not restarted.
	applyAll(ctx, t, c.Client, v2.AccessorySecrets[0], v2.AccessoryServices[0], v2.StatefulSets[0])
	st, err := c.Client.AppsV1().StatefulSets(ns).Get(ctx, v2.StatefulSets[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 1 {
		t.Errorf("StatefulSet %s at generation %d after the second release's apply, want 1", st.Name, st.Generation)
	}
	time.Sleep(2 * time.Second) // what a restart would take to show
	after := waitAccessory(ctx, t, c.Client, ns, st.Name)
	if after.UID != store.UID {
		t.Errorf("accessory pod replaced by the second release: %s then %s", store.UID, after.UID)
	}
	if body, err := kubetest.Get(ctx, "http://"+after.Status.PodIP+":7000/boots"); err != nil || strings.Count(body, "\n") != 1 {
		t.Errorf("accessory booted more than once: %q, %v", body, err)
	}

	// Release config is immutable on the cluster.
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, v1.ConfigMap.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["GREETING"] = "changed"
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("changing %s: %v, want a refusal (immutable)", cm.Name, err)
	} else {
		t.Logf("changing %s refused: %v", cm.Name, err)
	}
	// Every object carries moorage's labels and is managed by moorage.
	for _, o := range append(v1.List(), v2.List()...) {
		var got metav1.Object
		switch o.(type) {
		case *corev1.ConfigMap:
			got, err = c.Client.CoreV1().ConfigMaps(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		case *corev1.Secret:
			got, err = c.Client.CoreV1().Secrets(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		case *batchv1.Job:
			got, err = c.Client.BatchV1().Jobs(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		case *appsv1.Deployment:
			got, err = c.Client.AppsV1().Deployments(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		case *appsv1.StatefulSet:
			got, err = c.Client.AppsV1().StatefulSets(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		case *corev1.Service:
			got, err = c.Client.CoreV1().Services(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		managers := []string{}
		for _, f := range got.GetManagedFields() {
			if f.Operation == metav1.ManagedFieldsOperationApply {
				managers = append(managers, f.Manager)
			}
		}
		if got.GetLabels()[LabelManagedBy] != ManagedBy || !slices.Contains(managers, "moorage") {
			t.Errorf("%s: labels %v, apply managers %v", got.GetName(), got.GetLabels(), managers)
		}
	}
}

// applyAll applies objects by server-side apply with field manager
// moorage, through the typed clients.
func applyAll(ctx context.Context, t *testing.T, cs k8s.Interface, objs ...metav1.Object) {
	t.Helper()
	for _, o := range objs {
		body, err := ManifestJSON(o)
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{FieldManager: "moorage", Force: ptr.To(true)}
		ns, name := o.GetNamespace(), o.GetName()
		switch o.(type) {
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *corev1.Service:
			_, err = cs.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *corev1.PersistentVolumeClaim:
			_, err = cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *batchv1.Job:
			_, err = cs.BatchV1().Jobs(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		case *appsv1.StatefulSet:
			_, err = cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
		default:
			err = fmt.Errorf("no apply for %T", o)
		}
		if err != nil {
			t.Fatalf("apply %T %s: %v", o, name, err)
		}
	}
}

// poll calls check every 200 ms until it reports done or fails, or the
// timeout passes.
func poll(ctx context.Context, t *testing.T, what string, timeout time.Duration, check func() (bool, string, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state, err := check()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %s", what, timeout, state)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (%s)", what, ctx.Err(), state)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitJob(ctx context.Context, t *testing.T, cs k8s.Interface, ns, name string) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	poll(ctx, t, "job "+name, 2*time.Minute, func() (bool, string, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		job = j
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, "", nil
			case batchv1.JobFailed:
				return false, "", fmt.Errorf("failed: %s: %s", c.Reason, c.Message)
			}
		}
		return false, fmt.Sprintf("active %d, succeeded %d", j.Status.Active, j.Status.Succeeded), nil
	})
	return job
}

func jobLogs(ctx context.Context, t *testing.T, cs k8s.Interface, ns string, j *batchv1.Job) string {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + j.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods of job %s, want 1 (backoffLimit 0)", len(pods.Items), j.Name)
	}
	b, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", pods.Items[0].Name, err)
	}
	return string(b)
}

// waitAccessory waits until the StatefulSet's one pod is ready, and
// returns it.
func waitAccessory(ctx context.Context, t *testing.T, cs k8s.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(ctx, t, "statefulset "+name, 2*time.Minute, func() (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name+"-0", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		pod = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("pod %s %s", p.Name, p.Status.Phase), nil
	})
	return pod
}

func waitRollout(ctx context.Context, t *testing.T, cs k8s.Interface, ns, name string) {
	t.Helper()
	poll(ctx, t, "deployment "+name, 2*time.Minute, func() (bool, string, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		r := DeploymentRollout(d)
		switch r.State {
		case RolloutDone:
			return true, "", nil
		case RolloutFailed:
			return false, "", fmt.Errorf("rollout failed: %s", r.Message)
		}
		return false, r.Message, nil
	})
}

// waitEndpoints waits until the Service's ready endpoints are exactly ips
// (the EndpointSlice controller's view of its selector: what kube-proxy
// or an ingress controller would send traffic to).
func waitEndpoints(ctx context.Context, t *testing.T, cs k8s.Interface, ns, svc string, ips []string) {
	t.Helper()
	poll(ctx, t, "endpoints of "+svc, time.Minute, func() (bool, string, error) {
		list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err != nil {
			return false, "", err
		}
		var got []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					got = append(got, e.Addresses...)
				}
			}
		}
		slices.Sort(got)
		return strings.Join(got, ",") == strings.Join(ips, ","), fmt.Sprintf("ready endpoints %v, want %v", got, ips), nil
	})
}
