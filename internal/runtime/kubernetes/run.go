package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Run runs a one-off (a release task, a check, `moorage run`) as a Job:
// backoffLimit 0, restartPolicy Never, activeDeadlineSeconds from the
// timeout. Its output is streamed back (stdout and stderr apart when the
// cluster has PodLogsQuerySplitStreams); the Job and its pod are deleted
// once it is over. A Job of the same id left by an earlier server (a
// crash) is waited for and deleted first: two never run at once.
// A terminal or input (an interactive `moorage run`) is not supported.
func (r *Runtime) Run(ctx context.Context, s runtime.RunSpec) (int, error) {
	if s.Stdin != nil && !s.TTY {
		// The API hands every one-off a reader: `moorage run` without a
		// terminal sends its stdin, empty but for `moorage run -- cmd <
		// file`. Empty, the one-off is a Job like a release task.
		if _, data := seam.PeekInput(s.Stdin, seam.InputWait); !data {
			s.Stdin = nil
		}
	}
	if s.TTY || s.Stdin != nil {
		return -1, fmt.Errorf("run %s: an interactive one-off (terminal or input) is not supported on kubernetes yet; use kubectl exec in a running pod: %w", s.ID(), runtime.ErrNotSupported)
	}
	return r.tasks.Run(r.life.Check, &s, validateSpec, func(id string, fail func(error) (int, error)) (int, error) {
		code, err := r.run(ctx, id, &s)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return -1, err
			}
			return fail(err)
		}
		return code, nil
	})
}

func (r *Runtime) run(ctx context.Context, id string, s *runtime.RunSpec) (int, error) {
	p, err := r.podFor(ctx, &s.InstanceSpec)
	if err != nil {
		return -1, err
	}
	// A Job of this id from before (a server that crashed while it ran):
	// let it end, then delete it.
	if err := r.clearJobs(ctx, p.ns, p.name); err != nil {
		return -1, err
	}
	p.pod.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns, Labels: p.labels, Annotations: p.annots},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.labels, Annotations: p.annots}, Spec: p.pod},
		},
	}
	if s.Timeout > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr.To(ceilSeconds(s.Timeout))
	}
	if err := r.apply(ctx, p.ns, p.secret); err != nil {
		return -1, fmt.Errorf("environment secret: %w", err)
	}
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := r.deleteJob(cctx, p.ns, p.name); err != nil {
			r.log.Warn("one-off left", "instance", id, "err", err)
		}
		r.deleteSecrets(cctx, p.ns, p.name)
	}
	defer cleanup()
	if err := r.apply(ctx, p.ns, job); err != nil {
		return -1, err
	}
	began := time.Now()
	pod, err := r.waitTaskPod(ctx, p.ns, p.name, s.Timeout)
	if err != nil {
		return -1, err
	}
	stdout, stderr := seam.WriterOr(s.Stdout), seam.WriterOr(s.Stderr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.streamLogs(ctx, p.ns, pod, time.Time{}, func(stream string, _ time.Time, line []byte) {
			w := stdout
			if stream == "stderr" {
				w = stderr
			}
			w.Write(line)
			w.Write([]byte{'\n'})
		})
	}()
	code, err := r.waitJob(ctx, p.ns, p.name, s.Timeout, began)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if err != nil {
		return -1, err
	}
	l := p.labels
	r.events.Publish(runtime.InstanceEvent{Time: time.Now(), Type: runtime.EventExit, Instance: id, ExitCode: code,
		App: l[LabelApp], Service: l[LabelService], Release: l[LabelRelease], Kind: runtime.KindTask})
	return code, nil
}

// clearJobs waits until the Jobs of instance name that still run are over,
// then deletes them.
func (r *Runtime) clearJobs(ctx context.Context, ns, name string) error {
	for {
		js, err := r.cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
		if err != nil {
			return err
		}
		if len(js.Items) == 0 {
			return nil
		}
		live := false
		for _, j := range js.Items {
			if jobOver(&j) == "" && j.DeletionTimestamp == nil {
				live = true
			}
		}
		if !live {
			for _, j := range js.Items {
				if err := r.deleteJob(ctx, ns, j.Name); err != nil {
					return err
				}
			}
			return nil
		}
		r.log.Info("waiting for a one-off of the same id, left by an earlier server, to end", "job", ns+"/"+name)
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// removeLeftJobs deletes the one-offs (release tasks, checks, `moorage
// run`) that an earlier server of this prefix left in the cluster, and
// waits until their pods are gone, as the docker runtime removes the
// one-off containers it finds at its start. Nothing waits for them any
// more, and a release task must never run beside the next one: a
// migration a killed server had started is ended (its pod gets the stop
// signal and its grace period) before the engine's recovery, or the next
// deploy, runs anything. The cluster is asked, not moorage's own lock or
// records, so a Job is found whatever the server remembers.
func (r *Runtime) removeLeftJobs(ctx context.Context) error {
	js, err := r.cs.BatchV1().Jobs("").List(ctx, metav1.ListOptions{LabelSelector: r.ownSelector() + "," + LabelKind + "=" + KindTask})
	if err != nil {
		return fmt.Errorf("kubernetes runtime: list one-offs left by an earlier server: %w", err)
	}
	for _, j := range js.Items {
		if jobOver(&j) == "" {
			r.log.Warn("removing a one-off left running by a previous server", "job", j.Namespace+"/"+j.Name)
		}
		if err := r.deleteJob(ctx, j.Namespace, j.Name); err != nil {
			return fmt.Errorf("kubernetes runtime: remove the one-off %s/%s left by an earlier server: %w", j.Namespace, j.Name, err)
		}
	}
	return nil
}

// jobOver is the type of a Job's final condition, "" while it runs.
func jobOver(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// deleteJob deletes a Job and waits until it and its pods are gone.
func (r *Runtime) deleteJob(ctx context.Context, ns, name string) error {
	fg := metav1.DeletePropagationForeground
	if err := r.cs.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for {
		_, err := r.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	_, err := r.waitPodsGone(ctx, ns, name, time.Minute)
	return err
}

// waitTaskPod waits until the Job's pod has started its container (or
// ended), and fails when it cannot start.
func (r *Runtime) waitTaskPod(ctx context.Context, ns, name string, timeout time.Duration) (*corev1.Pod, error) {
	limit := r.opts.StartTimeout
	if timeout > 0 {
		limit = max(limit, timeout)
	}
	deadline := time.Now().Add(limit)
	last := "no pod yet"
	var judge startJudge
	for {
		pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
		if err != nil {
			return nil, err
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			last = describePod(pod)
			cs := appStatus(pod)
			if cs == nil {
				continue
			}
			if startError(cs.State.Terminated) {
				return nil, fmt.Errorf("its container cannot start: %s", last)
			}
			if cs.State.Running != nil || cs.State.Terminated != nil {
				return pod, nil
			}
			if judge.failed(cs.State.Waiting) {
				return nil, fmt.Errorf("its container cannot start: %s", last)
			}
		}
		if j, err := r.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && jobOver(j) == batchv1.JobFailed {
			if jobDeadline(j) {
				return nil, fmt.Errorf("not started within its timeout: %s: %w", last, runtime.ErrTimeout)
			}
			return nil, fmt.Errorf("job failed before its container started: %s", last)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not started after %s: %s: %w", limit, last, runtime.ErrTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// jobDeadline reports a Job the controller failed for its
// activeDeadlineSeconds.
func jobDeadline(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && c.Reason == "DeadlineExceeded" {
			return true
		}
	}
	return false
}

// waitJob waits until the Job is over and returns its container's exit
// code; ErrTimeout once its deadline passed.
func (r *Runtime) waitJob(ctx context.Context, ns, name string, timeout time.Duration, began time.Time) (int, error) {
	for {
		j, err := r.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return -1, err
		}
		if jobDeadline(j) {
			return -1, fmt.Errorf("still running after its timeout of %s: %w", timeout, runtime.ErrTimeout)
		}
		// The pod's exit is read once the controller has judged the Job
		// (its deadline may be what ended the pod).
		if jobOver(j) != "" {
			pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
			if err != nil {
				return -1, err
			}
			for i := range pods.Items {
				if cs := appStatus(&pods.Items[i]); cs != nil && cs.State.Terminated != nil {
					return int(cs.State.Terminated.ExitCode), nil
				}
			}
			return -1, fmt.Errorf("job %s: %s, and its pod's exit is not known", name, jobOver(j))
		}
		if timeout > 0 && time.Since(began) > timeout+time.Minute {
			return -1, fmt.Errorf("still running %s after its timeout of %s: %w", time.Since(began)-timeout, timeout, runtime.ErrTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// Exec runs a command in the instance's running container (the API
// server's exec, through the kubelet), as its user, with its environment.
// Extra variables (ExecSpec.Env) are not supported: the exec API has
// none, and an image may have no env program.
func (r *Runtime) Exec(ctx context.Context, id string, e runtime.ExecSpec) (int, error) {
	if err := r.life.Check(); err != nil {
		return -1, err
	}
	if len(e.Env) > 0 {
		return -1, fmt.Errorf("exec in %s: extra environment variables: the Kubernetes exec API sets none: %w", id, runtime.ErrNotSupported)
	}
	w, err := r.find(ctx, id)
	if err != nil {
		return -1, err
	}
	pods, err := r.cs.CoreV1().Pods(w.meta.Namespace).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(w.meta.Name)})
	if err != nil {
		return -1, err
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if cs := appStatus(&pods.Items[i]); pods.Items[i].DeletionTimestamp == nil && cs != nil && cs.State.Running != nil {
			pod = &pods.Items[i]
		}
	}
	if pod == nil {
		return -1, fmt.Errorf("exec in %s: not running: %w", id, runtime.ErrNotFound)
	}
	req := r.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: containerName, Command: inShell(e.Cmd), Stdin: e.Stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(r.cfg, "POST", req.URL())
	if err != nil {
		return -1, err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: e.Stdin, Stdout: seam.WriterOr(e.Stdout), Stderr: seam.WriterOr(e.Stderr)})
	var code utilexec.CodeExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &code):
		return code.Code, nil
	}
	if refs := runtime.Refs(e.Cmd); len(refs) > 0 && noShell(err) {
		return -1, fmt.Errorf("exec in %s: `%s` refers to $%s, which the kubernetes runtime expands in the container with /bin/sh (so that no value leaves it), and the image has no /bin/sh: add a shell to the image (busybox's is enough), or write the command without variables: %w",
			id, strings.Join(e.Cmd, " "), refs[0], err)
	}
	return -1, fmt.Errorf("exec in %s: %w", id, err)
}

// noShell reports an exec that failed because the container has no
// /bin/sh (the container runtime's words, through the kubelet).
func noShell(err error) bool {
	return err != nil && strings.Contains(err.Error(), `"/bin/sh"`) && strings.Contains(err.Error(), "no such file")
}
