package kubernetes

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ErrAccessoryImmutable is returned (wrapped) by AccessoryChange when an
// accessory's StatefulSet cannot be applied over the one in the cluster.
var ErrAccessoryImmutable = errors.New("an accessory's StatefulSet cannot be changed that way")

// AccessoryChange says whether the StatefulSet new (from Manifests) can be
// applied over old (the accessory's StatefulSet as the cluster has it; nil
// when there is none). Kubernetes refuses an update of a StatefulSet's
// volumeClaimTemplates, selector or serviceName: an accessory whose
// volumes, Options.VolumeSize or Options.StorageClass changed cannot be
// applied again. The mapping is pure and does not see the cluster, so the
// runtime calls this with what it read before applying, and gets an error
// naming the accessory, what changed and what to do, rather than the API
// server's refusal. Fields the server fills in (a claim template's
// volumeMode, its status) do not count as changes.
func AccessoryChange(old, new *appsv1.StatefulSet) error {
	if old == nil || new == nil {
		return nil
	}
	var changes []string
	if old.Spec.ServiceName != new.Spec.ServiceName {
		changes = append(changes, fmt.Sprintf("its serviceName %q -> %q", old.Spec.ServiceName, new.Spec.ServiceName))
	}
	if !equality.Semantic.DeepEqual(old.Spec.Selector, new.Spec.Selector) {
		changes = append(changes, fmt.Sprintf("its selector %v -> %v", selectorString(old), selectorString(new)))
	}
	changes = append(changes, claimChanges(old.Spec.VolumeClaimTemplates, new.Spec.VolumeClaimTemplates)...)
	if len(changes) == 0 {
		return nil
	}
	acc := new.Labels[LabelService]
	if acc == "" {
		acc = new.Name
	}
	ns := ""
	if old.Namespace != "" {
		ns = " -n " + old.Namespace
	}
	return fmt.Errorf("%w: accessory %s: %s; Kubernetes does not allow changing the volumeClaimTemplates, selector or serviceName of the StatefulSet %s. "+
		"To apply it, delete the StatefulSet but not its pod or claims (kubectl delete statefulset %s%s --cascade=orphan), then deploy again: "+
		"the new StatefulSet adopts the pod, and the existing claims are kept with their data as they are "+
		"(a claim's size or storage class does not change that way: resize the claim where its storage class allows expansion, or move the data to a new volume; a removed volume's claim stays until deleted)",
		ErrAccessoryImmutable, acc, strings.Join(changes, "; "), new.Name, new.Name, ns)
}

func selectorString(st *appsv1.StatefulSet) string {
	if st.Spec.Selector == nil {
		return "{}"
	}
	return fmt.Sprint(st.Spec.Selector.MatchLabels)
}

// claimChanges lists how the volumeClaimTemplates new differ from old, in
// what the mapping sets: names, labels, access modes, storage request,
// storage class and volume mode (unset is Filesystem, the server's
// default).
func claimChanges(old, new []corev1.PersistentVolumeClaim) []string {
	var out []string
	find := func(list []corev1.PersistentVolumeClaim, name string) *corev1.PersistentVolumeClaim {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
		return nil
	}
	for i := range new {
		n := &new[i]
		o := find(old, n.Name)
		if o == nil {
			out = append(out, fmt.Sprintf("volume %s added", n.Name))
			continue
		}
		what := func(f string, a, b any) {
			out = append(out, fmt.Sprintf("volume %s: %s %v -> %v", n.Name, f, a, b))
		}
		if os, ns := storage(o), storage(n); os.Cmp(ns) != 0 {
			what("size", os.String(), ns.String())
		}
		if oc, nc := class(o), class(n); oc != nc {
			what("storage class", oc, nc)
		}
		if !slices.Equal(o.Spec.AccessModes, n.Spec.AccessModes) {
			what("access modes", o.Spec.AccessModes, n.Spec.AccessModes)
		}
		if om, nm := volumeMode(o), volumeMode(n); om != nm {
			what("volume mode", om, nm)
		}
		if !equality.Semantic.DeepEqual(o.Labels, n.Labels) && (len(o.Labels) > 0 || len(n.Labels) > 0) {
			what("labels", o.Labels, n.Labels)
		}
	}
	for i := range old {
		if find(new, old[i].Name) == nil {
			out = append(out, fmt.Sprintf("volume %s removed", old[i].Name))
		}
	}
	if len(out) == 0 && len(old) == len(new) {
		for i := range new {
			if old[i].Name != new[i].Name {
				out = append(out, "the volumes' order")
				break
			}
		}
	}
	return out
}

func storage(c *corev1.PersistentVolumeClaim) resource.Quantity {
	return c.Spec.Resources.Requests[corev1.ResourceStorage]
}

func class(c *corev1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName == nil {
		return "(the cluster's default)"
	}
	return fmt.Sprintf("%q", *c.Spec.StorageClassName)
}

func volumeMode(c *corev1.PersistentVolumeClaim) corev1.PersistentVolumeMode {
	if c.Spec.VolumeMode == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *c.Spec.VolumeMode
}
