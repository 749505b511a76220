package kubernetes

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeploymentRollout(t *testing.T) {
	progressingCond := func(reason, msg string, status corev1.ConditionStatus) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: msg}
	}
	deadline := progressingCond(ProgressDeadlineExceeded, `ReplicaSet "web-6d4cf56db6" has timed out progressing.`, corev1.ConditionFalse)
	tests := []struct {
		name       string
		generation int64
		replicas   *int32
		status     appsv1.DeploymentStatus
		want       RolloutState
		wantMsg    string
	}{
		{
			name:       "new, not observed yet",
			generation: 1, replicas: ptr.To[int32](2),
			want: RolloutProgressing, wantMsg: "observe generation 1 (observed 0)",
		},
		{
			name:       "spec changed, old status still complete",
			generation: 3, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2},
			want:   RolloutProgressing, wantMsg: "observe generation 3 (observed 2)",
		},
		{
			name:       "deadline exceeded but generation not observed: not judged yet",
			generation: 3, replicas: ptr.To[int32](1),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{deadline}},
			want:   RolloutProgressing, wantMsg: "observe generation 3",
		},
		{
			name:       "observed, nothing updated",
			generation: 1, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 1},
			want:   RolloutProgressing, wantMsg: "0 of 2 new replicas updated",
		},
		{
			name:       "some updated",
			generation: 2, replicas: ptr.To[int32](3),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3},
			want:   RolloutProgressing, wantMsg: "1 of 3 new replicas updated",
		},
		{
			name:       "all updated, old ones terminating",
			generation: 2, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 2},
			want:   RolloutProgressing, wantMsg: "1 old replicas pending termination",
		},
		{
			name:       "all updated, not all available",
			generation: 2, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1},
			want:   RolloutProgressing, wantMsg: "1 of 2 updated replicas available",
		},
		{
			name:       "done",
			generation: 2, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{progressingCond("NewReplicaSetAvailable", "", corev1.ConditionTrue)}},
			want: RolloutDone, wantMsg: "rolled out: 2 of 2",
		},
		{
			name:       "done, observed generation ahead",
			generation: 2, replicas: ptr.To[int32](1),
			status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1},
			want:   RolloutDone,
		},
		{
			name:       "scaled to zero",
			generation: 4, replicas: ptr.To[int32](0),
			status: appsv1.DeploymentStatus{ObservedGeneration: 4},
			want:   RolloutDone,
		},
		{
			name:       "scaled to zero, old pods still going",
			generation: 4, replicas: ptr.To[int32](0),
			status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 2, AvailableReplicas: 2},
			want:   RolloutProgressing, wantMsg: "2 old replicas pending termination",
		},
		{
			name:       "nil replicas counts as 1",
			generation: 1,
			status:     appsv1.DeploymentStatus{ObservedGeneration: 1},
			want:       RolloutProgressing, wantMsg: "0 of 1 new replicas updated",
		},
		{
			name:       "progress deadline exceeded",
			generation: 2, replicas: ptr.To[int32](2),
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, deadline}},
			want: RolloutFailed, wantMsg: `exceeded its progress deadline: ReplicaSet "web-6d4cf56db6" has timed out progressing.`,
		},
		{
			name:       "progress deadline exceeded wins over complete counts",
			generation: 1, replicas: ptr.To[int32](1),
			status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{deadline}},
			want: RolloutFailed,
		},
		{
			name:       "another reason on Progressing is not a failure",
			generation: 1, replicas: ptr.To[int32](1),
			status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{progressingCond("ReplicaSetUpdated", "", corev1.ConditionTrue)}},
			want: RolloutProgressing, wantMsg: "0 of 1 updated replicas available",
		},
		{
			name:       "the deadline reason on another condition is not a failure",
			generation: 1, replicas: ptr.To[int32](1),
			status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: ProgressDeadlineExceeded}}},
			want: RolloutDone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: tt.generation},
				Spec:       appsv1.DeploymentSpec{Replicas: tt.replicas},
				Status:     tt.status,
			}
			got := DeploymentRollout(d)
			if got.State != tt.want {
				t.Errorf("state %s (%s), want %s", got.State, got.Message, tt.want)
			}
			if !strings.Contains(got.Message, tt.wantMsg) || !strings.Contains(got.Message, `"web"`) {
				t.Errorf("message %q, want it to name \"web\" and contain %q", got.Message, tt.wantMsg)
			}
		})
	}
}

func TestRolloutStateString(t *testing.T) {
	for s, want := range map[RolloutState]string{RolloutProgressing: "progressing", RolloutDone: "done", RolloutFailed: "failed", 7: "RolloutState(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}
