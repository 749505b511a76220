// Package kubernetes holds the parts of the kubernetes runtime (issue 12)
// that need no cluster: the mapping of a release onto Kubernetes objects
// (Manifests) and their printing as YAML, and the judgement of a
// Deployment's rollout (DeploymentRollout). See docs/kubernetes.md.
package kubernetes

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
)

// RolloutState is where a Deployment's rollout stands.
type RolloutState int

const (
	// RolloutProgressing: not done yet, and not known to have failed.
	RolloutProgressing RolloutState = iota
	// RolloutDone: every replica runs the current template and is
	// available, and no old replica is left.
	RolloutDone
	// RolloutFailed: the deployment controller gave up on progress
	// (the Progressing condition's reason is ProgressDeadlineExceeded).
	RolloutFailed
)

func (s RolloutState) String() string {
	switch s {
	case RolloutProgressing:
		return "progressing"
	case RolloutDone:
		return "done"
	case RolloutFailed:
		return "failed"
	}
	return fmt.Sprintf("RolloutState(%d)", int(s))
}

// Rollout is a judgement of a Deployment's rollout, with a message for
// people that says what it waits for or why it failed.
type Rollout struct {
	State   RolloutState
	Message string
}

// ProgressDeadlineExceeded is the reason the deployment controller puts on
// the Progressing condition when progressDeadlineSeconds passed without
// progress.
const ProgressDeadlineExceeded = "ProgressDeadlineExceeded"

// DeploymentRollout judges d's rollout from its spec and status alone, by
// the rules `kubectl rollout status` applies:
//
//  1. until the controller has observed d's generation
//     (status.observedGeneration >= metadata.generation), nothing in the
//     status is about the current spec: progressing;
//  2. a Progressing condition with reason ProgressDeadlineExceeded: failed;
//  3. fewer updated replicas than spec.replicas: progressing;
//  4. more replicas than updated ones (old ones not gone yet): progressing;
//  5. fewer available replicas than updated ones: progressing;
//  6. else done.
//
// A nil spec.replicas counts as 1, the API server's default.
func DeploymentRollout(d *appsv1.Deployment) Rollout {
	st := d.Status
	if st.ObservedGeneration < d.Generation {
		return progressing("deployment %q: waiting for the controller to observe generation %d (observed %d)",
			d.Name, d.Generation, st.ObservedGeneration)
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == ProgressDeadlineExceeded {
			msg := fmt.Sprintf("deployment %q exceeded its progress deadline", d.Name)
			if c.Message != "" {
				msg += ": " + c.Message
			}
			return Rollout{State: RolloutFailed, Message: msg}
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case st.UpdatedReplicas < want:
		return progressing("deployment %q: %d of %d new replicas updated", d.Name, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return progressing("deployment %q: %d old replicas pending termination", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return progressing("deployment %q: %d of %d updated replicas available", d.Name, st.AvailableReplicas, st.UpdatedReplicas)
	}
	return Rollout{State: RolloutDone, Message: fmt.Sprintf("deployment %q rolled out: %d of %d replicas updated and available", d.Name, st.AvailableReplicas, want)}
}

func progressing(format string, args ...any) Rollout {
	return Rollout{State: RolloutProgressing, Message: fmt.Sprintf(format, args...)}
}
