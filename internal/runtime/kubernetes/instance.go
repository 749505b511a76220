package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
	"github.com/moorage/moorage/internal/spec"
)

// validateSpec is seam.ValidateSpec without host paths: a pod mounts the
// app's volumes (claims), never a directory of the server.
func validateSpec(s *runtime.InstanceSpec) error {
	if err := seam.ValidateSpec(s, false); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if seam.IsHostPath(m.Name) {
			return fmt.Errorf("%s: mount %s: the kubernetes runtime mounts volumes only, no host paths or ./dir of the upload (copy such files into the image): %w", s.ID(), m.Name, runtime.ErrNotSupported)
		}
	}
	return nil
}

// applyWorkload applies a Deployment, StatefulSet or Job.
func (r *Runtime) applyWorkload(ctx context.Context, ns string, obj metav1.Object, body []byte, opts metav1.PatchOptions) error {
	var err error
	name := obj.GetName()
	switch obj.(type) {
	case *appsv1.Deployment:
		_, err = r.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *appsv1.StatefulSet:
		_, err = r.cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *batchv1.Job:
		_, err = r.cs.BatchV1().Jobs(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	default:
		err = fmt.Errorf("apply: unexpected object %T", obj)
	}
	return err
}

// podParts is what an instance's pod is made of.
type podParts struct {
	ns, name string
	labels   map[string]string
	annots   map[string]string
	secret   *corev1.Secret
	pod      corev1.PodSpec
}

// podFor maps an instance spec onto its namespace, object name, labels,
// environment Secret and pod spec.
func (r *Runtime) podFor(ctx context.Context, s *runtime.InstanceSpec) (*podParts, error) {
	ns, err := r.ensureNamespace(ctx, s.App)
	if err != nil {
		return nil, err
	}
	image, err := r.imageRef(ctx, s)
	if err != nil {
		return nil, err
	}
	id := s.ID()
	p := &podParts{ns: ns, name: instanceName(id, s.Kind)}
	p.labels = r.labels(s, p.name)
	p.annots = map[string]string{annInstance: id}
	if s.Hash != "" {
		p.annots[annHash] = s.Hash
	}
	if s.Port > 0 {
		p.annots[annPort] = strconv.Itoa(s.Port)
	}
	vols := map[string]string{}
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, m := range s.Mounts {
		vn := "vol-" + strconv.Itoa(i)
		volumes = append(volumes, corev1.Volume{Name: vn, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: VolumeClaimName(s.App, m.Name)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: vn, MountPath: m.Target})
		vols[runtime.VolumeEnv(m.Name)] = m.Target
	}
	// The whole environment (secrets included) is in an immutable Secret
	// named by its content, which the container reads with envFrom: the
	// pod spec carries no value.
	env := runtime.InstanceEnv(s, s.Port, vols)
	sum := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(sum, "%s=%s\x00", k, env[k])
	}
	p.secret = &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: shortName(MaxNameLength, hex.EncodeToString(sum.Sum(nil))[:10], p.name, "env"), Namespace: ns, Labels: p.labels},
		Immutable:  ptr.To(true),
		Type:       corev1.SecretTypeOpaque,
		StringData: env,
	}
	c := corev1.Container{
		Name:            containerName,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		EnvFrom:         []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: p.secret.Name}}}},
		VolumeMounts:    mounts,
		Resources:       resources(s.Memory, s.CPUs),
	}
	if image != s.Image || s.Image == "" {
		c.WorkingDir = s.Artifact.Workdir
	}
	known := func(k string) bool { _, ok := env[k]; return ok }
	for _, a := range s.Command {
		c.Command = append(c.Command, kubeArg(a, known))
	}
	if s.Port > 0 {
		c.Ports = []corev1.ContainerPort{{Name: "app", ContainerPort: int32(s.Port), Protocol: corev1.ProtocolTCP}}
	}
	// The spec's check becomes the pod's readiness and startup probes,
	// the same check the engine gates on (a command check expanded in the
	// container, as Exec runs it).
	c.ReadinessProbe, c.StartupProbe = probes(s.Health, s.Port, s.HealthHost, func(argv []string) []string {
		var cmd []string
		for _, a := range inShell(argv) {
			cmd = append(cmd, kubeLiteral(a))
		}
		return cmd
	})
	if c.SecurityContext, err = securityContext(s.User, s.ReadOnly); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", id, err, runtime.ErrInvalidSpec)
	}
	p.pod = corev1.PodSpec{
		Volumes:                      volumes,
		EnableServiceLinks:           ptr.To(false),
		AutomountServiceAccountToken: ptr.To(false),
	}
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = spec.DefaultStopTimeout
	}
	stop(&c, &p.pod, spec.Signal(s.StopSignal), timeout, 0)
	p.pod.Containers = []corev1.Container{c}
	return p, nil
}

// Start creates the instance's Deployment (a service replica) or
// StatefulSet (an accessory), with one replica, and returns once its pod
// runs (not necessarily ready). It fails with ErrExists when the instance
// exists.
func (r *Runtime) Start(ctx context.Context, s runtime.InstanceSpec) (runtime.Instance, error) {
	return r.ids.Start(r.life.Check, &s, validateSpec, func(id string) (runtime.Instance, error) { return r.start(ctx, id, &s) })
}

func (r *Runtime) start(ctx context.Context, id string, s *runtime.InstanceSpec) (runtime.Instance, error) {
	if s.Kind == runtime.KindTask {
		return runtime.Instance{}, fmt.Errorf("%s: a task runs with Run: %w", id, runtime.ErrInvalidSpec)
	}
	ns, name := r.Namespace(s.App), instanceName(id, s.Kind)
	if obj, err := r.getWorkload(ctx, ns, name, s.Kind); err == nil {
		if !r.owned(obj) {
			return runtime.Instance{}, fmt.Errorf("%s %s/%s exists and moorage (prefix %s) did not make it: %w; moorage never touches it", kindWord(s.Kind), ns, name, r.opts.Prefix, runtime.ErrExists)
		}
		return runtime.Instance{}, runtime.ErrExists
	} else if !apierrors.IsNotFound(err) {
		return runtime.Instance{}, err
	}
	p, err := r.podFor(ctx, s)
	if err != nil {
		return runtime.Instance{}, err
	}
	if s.Single {
		if err := r.waitSingle(ctx, s, name); err != nil {
			return runtime.Instance{}, err
		}
	}
	if err := r.apply(ctx, p.ns, p.secret); err != nil {
		return runtime.Instance{}, fmt.Errorf("environment secret: %w", err)
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{LabelPrefix: r.opts.Prefix, LabelInstance: name}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.labels, Annotations: p.annots}, Spec: p.pod}
	var obj metav1.Object
	if s.Kind == runtime.KindAccessory {
		obj = &appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns, Labels: p.labels, Annotations: p.annots},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To[int32](1), Selector: sel, Template: tmpl, ServiceName: name,
				PodManagementPolicy: appsv1.ParallelPodManagement,
			},
		}
	} else {
		obj = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns, Labels: p.labels, Annotations: p.annots},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1), Selector: sel, Template: tmpl,
				Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				RevisionHistoryLimit: ptr.To[int32](0),
			},
		}
	}
	if err := r.apply(ctx, p.ns, obj); err != nil {
		r.deleteSecrets(context.WithoutCancel(ctx), p.ns, name)
		return runtime.Instance{}, err
	}
	r.copyLogs(s.App, id, s.Kind)
	in, err := r.waitStarted(ctx, id, s, p.ns, name)
	if err != nil {
		// Nothing is left of a start that failed.
		if rerr := r.remove(context.WithoutCancel(ctx), id); rerr != nil && !errors.Is(rerr, runtime.ErrNotFound) {
			r.log.Warn("removing an instance that failed to start", "instance", id, "err", rerr)
		}
		return runtime.Instance{}, err
	}
	return in, nil
}

func kindWord(k runtime.Kind) string {
	if k == runtime.KindAccessory {
		return "statefulset"
	}
	return "deployment"
}

// getWorkload reads the Deployment or StatefulSet of an instance.
func (r *Runtime) getWorkload(ctx context.Context, ns, name string, kind runtime.Kind) (metav1.Object, error) {
	if kind == runtime.KindAccessory {
		return r.cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	}
	return r.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
}

// startFailures are the waiting reasons of a container that may not run
// without a change (its command, its image, its environment). The kubelet
// retries them, and some pass by themselves (a secret its cache has not
// synced yet, a registry that did not answer once): a start fails once one
// has lasted startPatience, or at once for those that never pass.
var startFailures = map[string]bool{
	"CreateContainerError": true, "CreateContainerConfigError": true, "RunContainerError": true,
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
}

// startPatience is how long a container may wait for a reason of
// startFailures before its start fails.
const startPatience = 20 * time.Second

// startJudge says when a container's waiting means its start failed.
type startJudge struct{ since time.Time }

// failed reports whether the container, waiting for w (nil: not
// waiting), is taken for one that will not start.
func (j *startJudge) failed(w *corev1.ContainerStateWaiting) bool {
	if w == nil || !startFailures[w.Reason] {
		j.since = time.Time{}
		return false
	}
	if w.Reason == "InvalidImageName" || w.Reason == "ErrImageNeverPull" {
		return true
	}
	if j.since.IsZero() {
		j.since = time.Now()
	}
	return time.Since(j.since) > startPatience
}

// waitStarted waits until the instance's pod runs, and fails when its
// container cannot start.
func (r *Runtime) waitStarted(ctx context.Context, id string, s *runtime.InstanceSpec, ns, name string) (runtime.Instance, error) {
	deadline := time.Now().Add(r.opts.StartTimeout)
	last := "no pod yet"
	var judge startJudge
	for {
		pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
		if err != nil {
			return runtime.Instance{}, err
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			if pod.DeletionTimestamp != nil {
				continue
			}
			last = describePod(pod)
			cs := appStatus(pod)
			if cs == nil {
				continue
			}
			if cs.State.Running != nil || (cs.RestartCount > 0 && !startError(cs.LastTerminationState.Terminated)) {
				ins, err := r.List(ctx, runtime.Filter{App: s.App, Service: s.Service, Release: s.Release, Kind: s.Kind})
				if err != nil {
					return runtime.Instance{}, err
				}
				for _, in := range ins {
					if in.ID == id {
						return in, nil
					}
				}
			}
			if judge.failed(cs.State.Waiting) {
				return runtime.Instance{}, fmt.Errorf("its container cannot start: %s", last)
			}
			if startError(cs.State.Terminated) || (cs.State.Waiting != nil && startError(cs.LastTerminationState.Terminated)) {
				return runtime.Instance{}, fmt.Errorf("its container cannot start: %s", last)
			}
		}
		if time.Now().After(deadline) {
			return runtime.Instance{}, fmt.Errorf("not running after %s: %s: %w", r.opts.StartTimeout, last, runtime.ErrTimeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return runtime.Instance{}, err
		}
	}
}

// startError reports a container that never ran its command (a missing
// program, a bad working directory).
func startError(t *corev1.ContainerStateTerminated) bool {
	return t != nil && (t.Reason == "StartError" || t.Reason == "ContainerCannotRun")
}

// appStatus is the status of the pod's container, nil before it has one.
func appStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == containerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// describePod says where a pod stands, for errors.
func describePod(pod *corev1.Pod) string {
	s := fmt.Sprintf("pod %s: %s", pod.Name, pod.Status.Phase)
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			s += fmt.Sprintf(" (%s: %s)", c.Type, c.Message)
		}
	}
	if cs := appStatus(pod); cs != nil {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(", container waiting: %s %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(", container terminated: %s, exit code %d %s", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
		case cs.State.Running != nil:
			s += ", container running"
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			s += fmt.Sprintf("; last exit: %s, code %d %s", t.Reason, t.ExitCode, strings.TrimSpace(t.Message))
		}
	}
	return s
}

// waitSingle waits until no pod of another instance of s's service (an
// older release's singleton) exists: gone, not merely Terminating. A
// singleton never has two pods at once.
func (r *Runtime) waitSingle(ctx context.Context, s *runtime.InstanceSpec, name string) error {
	sel := r.ownSelector() + "," + LabelApp + "=" + s.App + "," + LabelService + "=" + s.Service + "," + LabelKind + "=" + string(s.Kind)
	wait := s.StopTimeout + 30*time.Second
	deadline := time.Now().Add(wait)
	for {
		pods, err := r.cs.CoreV1().Pods(r.Namespace(s.App)).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		var other []string
		for _, p := range pods.Items {
			if p.Labels[LabelInstance] != name {
				other = append(other, describePod(&p))
			}
		}
		if len(other) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("singleton %s still has a pod of another instance after %s, and never runs twice: %s: %w", s.Service, wait, strings.Join(other, "; "), runtime.ErrTimeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// workload is an instance's Deployment or StatefulSet, as List and Stop
// read it.
type workload struct {
	meta     metav1.ObjectMeta
	replicas int32
	grace    time.Duration
	kind     runtime.Kind
}

// find returns the workload of instance id, ErrNotFound when the runtime
// has none.
func (r *Runtime) find(ctx context.Context, id string) (*workload, error) {
	sel := fmt.Sprintf("%s,%s in (%s,%s)", r.ownSelector(), LabelInstance, instanceName(id, runtime.KindService), instanceName(id, runtime.KindAccessory))
	ws, err := r.workloads(ctx, "", sel)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.meta.Annotations[annInstance] == id {
			return w, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", id, runtime.ErrNotFound)
}

// workloads lists the runtime's Deployments and StatefulSets in ns ("":
// every namespace) that match sel.
func (r *Runtime) workloads(ctx context.Context, ns, sel string) ([]*workload, error) {
	var out []*workload
	grace := func(p *corev1.PodSpec) time.Duration {
		if g := p.TerminationGracePeriodSeconds; g != nil {
			return time.Duration(*g) * time.Second
		}
		return 30 * time.Second
	}
	deps, err := r.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	for _, d := range deps.Items {
		if d.DeletionTimestamp == nil && r.owned(&d) {
			out = append(out, &workload{meta: d.ObjectMeta, replicas: ptr.Deref(d.Spec.Replicas, 1), grace: grace(&d.Spec.Template.Spec), kind: runtime.KindService})
		}
	}
	sts, err := r.cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	for _, s := range sts.Items {
		if s.DeletionTimestamp == nil && r.owned(&s) {
			out = append(out, &workload{meta: s.ObjectMeta, replicas: ptr.Deref(s.Spec.Replicas, 1), grace: grace(&s.Spec.Template.Spec), kind: runtime.KindAccessory})
		}
	}
	return out, nil
}

// List returns the instances that match f (one-offs in progress are not
// listed).
func (r *Runtime) List(ctx context.Context, f runtime.Filter) ([]runtime.Instance, error) {
	if err := r.life.Check(); err != nil {
		return nil, err
	}
	ns, sel := "", r.ownSelector()
	if f.App != "" {
		ns = r.Namespace(f.App)
		sel += "," + LabelApp + "=" + f.App
	}
	ws, err := r.workloads(ctx, ns, sel)
	if err != nil {
		return nil, err
	}
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	byName := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		byName[p.Namespace+"/"+p.Labels[LabelInstance]] = append(byName[p.Namespace+"/"+p.Labels[LabelInstance]], p)
	}
	var out []runtime.Instance
	for _, w := range ws {
		in := instanceOf(w, byName[w.meta.Namespace+"/"+w.meta.Name])
		if in.ID != "" && f.Match(in) {
			out = append(out, in)
		}
	}
	return seam.ByID(out), nil
}

// instanceOf turns a workload and its pods into an Instance.
func instanceOf(w *workload, pods []*corev1.Pod) runtime.Instance {
	l := w.meta.Labels
	in := runtime.Instance{
		ID: w.meta.Annotations[annInstance], App: l[LabelApp], Service: l[LabelService], Release: l[LabelRelease],
		Kind: runtime.Kind(l[LabelKind]), Hash: w.meta.Annotations[annHash], State: runtime.StateExited,
	}
	in.Index, _ = strconv.Atoi(l[LabelIndex])
	in.Port, _ = strconv.Atoi(w.meta.Annotations[annPort])
	in.ExitCode, _ = strconv.Atoi(w.meta.Annotations[annExit])
	if w.replicas == 0 {
		return in
	}
	var cur *corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && (cur == nil || p.CreationTimestamp.After(cur.CreationTimestamp.Time)) {
			cur = p
		}
	}
	in.State = runtime.StateRestarting
	if cur == nil {
		return in
	}
	in.Node = cur.Spec.NodeName
	cs := appStatus(cur)
	if cs == nil {
		return in
	}
	in.Restarts = int(cs.RestartCount)
	if t := cs.LastTerminationState.Terminated; t != nil {
		in.ExitCode = int(t.ExitCode)
	}
	// Running, with its address, once the container runs: not only once
	// the kubelet's readiness probe passes, which is the spec's check, and
	// the engine gates (and the proxy checks) on that check itself.
	if cs.State.Running != nil && cur.Status.PodIP != "" {
		in.State = runtime.StateRunning
		in.StartedAt = cs.State.Running.StartedAt.Time
		if in.Port > 0 {
			in.Addr = cur.Status.PodIP + ":" + strconv.Itoa(in.Port)
		}
	}
	if in.Port > 0 && cur.Status.PodIP != "" {
		// No cluster DNS is assumed: others reach it at its pod's IP.
		in.Host = cur.Status.PodIP
	}
	return in
}

// stop is Stop (seam.Stopper): it scales the instance's workload to 0 and
// returns once its pod is gone (deleted, not merely Terminating): after
// its stop signal, then SIGKILL once its grace period is over.
func (r *Runtime) stop(ctx context.Context, id string) error {
	w, err := r.find(ctx, id)
	if err != nil {
		return err
	}
	ns, name := w.meta.Namespace, w.meta.Name
	if w.replicas != 0 {
		patch := []byte(`{"spec":{"replicas":0}}`)
		if w.kind == runtime.KindAccessory {
			_, err = r.cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		} else {
			_, err = r.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		}
		if err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	code, err := r.waitPodsGone(ctx, ns, name, w.grace+30*time.Second)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if w.replicas != 0 {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, annExit, strconv.Itoa(code))
		if w.kind == runtime.KindAccessory {
			_, err = r.cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		} else {
			_, err = r.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		}
		if err != nil {
			r.log.Debug("recording the exit code", "instance", id, "err", err)
		}
		l := w.meta.Labels
		r.events.Publish(runtime.InstanceEvent{Time: time.Now(), Type: runtime.EventExit, Instance: id, ExitCode: code,
			App: l[LabelApp], Service: l[LabelService], Release: l[LabelRelease], Kind: runtime.Kind(l[LabelKind])})
	}
	return nil
}

// waitPodsGone waits until instance name has no pod left, and returns the
// last exit code seen of its container.
func (r *Runtime) waitPodsGone(ctx context.Context, ns, name string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	code := 0
	for {
		pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
		if err != nil {
			return code, err
		}
		if len(pods.Items) == 0 {
			return code, nil
		}
		var what []string
		for i := range pods.Items {
			if cs := appStatus(&pods.Items[i]); cs != nil && cs.State.Terminated != nil {
				code = int(cs.State.Terminated.ExitCode)
			}
			what = append(what, describePod(&pods.Items[i]))
		}
		if time.Now().After(deadline) {
			return code, fmt.Errorf("pods still there after %s (a pod on a node that is down stays until the node is back or removed: kubectl delete node): %s: %w", timeout, strings.Join(what, "; "), runtime.ErrTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return code, err
		}
	}
}

// Remove stops the instance, then deletes its workload and environment
// Secret (its logs are kept).
func (r *Runtime) Remove(ctx context.Context, id string) error {
	return r.ids.Do(r.life.Check, id, func() error { return r.remove(ctx, id) })
}

func (r *Runtime) remove(ctx context.Context, id string) error {
	if err := r.stop(ctx, id); err != nil {
		return err
	}
	w, err := r.find(ctx, id)
	if err != nil {
		return err
	}
	ns, name := w.meta.Namespace, w.meta.Name
	fg := metav1.DeletePropagationForeground
	del := metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &w.meta.UID}}
	if w.kind == runtime.KindAccessory {
		err = r.cs.AppsV1().StatefulSets(ns).Delete(ctx, name, del)
	} else {
		err = r.cs.AppsV1().Deployments(ns).Delete(ctx, name, del)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := r.getWorkload(ctx, ns, name, w.kind)
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove %s: still there after a minute (is the garbage collector of kube-controller-manager running?): %w", id, runtime.ErrTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	r.deleteSecrets(ctx, ns, name)
	r.stopCopy(id)
	return nil
}

// deleteSecrets deletes the environment Secrets of instance name.
func (r *Runtime) deleteSecrets(ctx context.Context, ns, name string) {
	if err := r.cs.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: r.instanceSelector(name)}); err != nil && !apierrors.IsNotFound(err) {
		r.log.Warn("environment secret left", "namespace", ns, "instance", name, "err", err)
	}
}

// quantity of seconds, rounded up.
func ceilSeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
