package kubernetes

import (
	"errors"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/spec"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// TestKubernetesAccessoryChange: a StatefulSet whose volumeClaimTemplates,
// selector or serviceName differ from the cluster's cannot be applied
// over it; AccessoryChange says so, naming the accessory, what changed
// and what to do, and lets everything else through.
func TestKubernetesAccessoryChange(t *testing.T) {
	db := func(t *testing.T, o Options, edit func(*spec.Accessory)) *appsv1.StatefulSet {
		t.Helper()
		r := shopRelease(t, 1)
		if edit != nil {
			edit(r.Spec.Accessories["db"])
		}
		o.Namespace = "shop"
		objs, err := Manifests(r, o)
		if err != nil {
			t.Fatal(err)
		}
		return objs.StatefulSets[0]
	}
	old := db(t, Options{}, nil)
	if old.Labels[LabelService] != "db" || len(old.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("the shop's first StatefulSet is not db with one volume: %s", old.Name)
	}
	// As the server returns it: defaults filled in.
	server := old.DeepCopy()
	server.Spec.VolumeClaimTemplates[0].Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	server.Spec.VolumeClaimTemplates[0].APIVersion, server.Spec.VolumeClaimTemplates[0].Kind = "v1", "PersistentVolumeClaim"
	server.Spec.VolumeClaimTemplates[0].Status.Phase = corev1.ClaimPending
	server.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("1073741824")
	server.Spec.Template.Spec.Containers[0].Image = "postgres:17" // the template may change
	server.Spec.RevisionHistoryLimit = ptr.To[int32](10)

	for _, c := range []struct {
		name string
		old  *appsv1.StatefulSet
		new  *appsv1.StatefulSet
		want []string // in the error; none: no error
	}{
		{"nothing there", nil, old, nil},
		{"unchanged", old, db(t, Options{}, nil), nil},
		{"as the server has it", server, db(t, Options{}, nil), nil},
		{"another image", old, db(t, Options{}, func(a *spec.Accessory) { a.Image = "postgres:17" }), nil},
		{"size", old, db(t, Options{VolumeSize: resource.MustParse("5Gi")}, nil), []string{"volume pgdata: size 1Gi -> 5Gi"}},
		{"storage class", old, db(t, Options{StorageClass: "fast"}, nil), []string{`volume pgdata: storage class (the cluster's default) -> "fast"`}},
		{"volume added", old, db(t, Options{}, func(a *spec.Accessory) {
			a.Volumes = append(a.Volumes, spec.VolumeMount{Name: "wal", Path: "/wal"})
		}), []string{"volume wal added"}},
		{"volume removed", old, db(t, Options{}, func(a *spec.Accessory) { a.Volumes = nil }), []string{"volume pgdata removed"}},
		{"serviceName", old, func() *appsv1.StatefulSet {
			st := db(t, Options{}, nil)
			st.Spec.ServiceName = "other"
			return st
		}(), []string{`serviceName "shop-db" -> "other"`}},
		{"selector", old, func() *appsv1.StatefulSet {
			st := db(t, Options{}, nil)
			st.Spec.Selector.MatchLabels["x"] = "y"
			return st
		}(), []string{"selector"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := AccessoryChange(c.old, c.new)
			if len(c.want) == 0 {
				if err != nil {
					t.Errorf("error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if !errors.Is(err, ErrAccessoryImmutable) {
				t.Errorf("not ErrAccessoryImmutable: %v", err)
			}
			for _, w := range append(c.want, "accessory db: ", "kubectl delete statefulset shop-db -n shop --cascade=orphan", "deploy again") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}
