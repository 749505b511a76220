package kubernetes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// hostPathClass is the storageClassName of the hostPath volumes the
// runtime makes under Options.VolumeDir (no StorageClass object: the
// volumes are bound to their claims by name).
const hostPathClass = "moorage-hostpath"

// EnsureVolume creates app's volume name when it is missing: a
// PersistentVolumeClaim APP-volume-NAME in the app's namespace, which
// every instance that mounts the volume shares. Its storage is
// Options.StorageClass; else, with Options.VolumeDir, a hostPath
// PersistentVolume the runtime makes at VolumeDir/NAMESPACE/NAME
// (single-node clusters whose node is the server's machine); else the
// cluster's default StorageClass, which must exist.
func (r *Runtime) EnsureVolume(ctx context.Context, app, name string) error {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return err
	}
	ns, err := r.ensureNamespace(ctx, app)
	if err != nil {
		return err
	}
	claim := VolumeClaimName(app, name)
	if got, err := r.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{}); err == nil {
		if !r.owned(got) {
			return fmt.Errorf("volume claim %s/%s exists and is not moorage's: moorage never uses it", ns, claim)
		}
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	l := Labels(app, name, "", KindVolume)
	l[LabelPrefix] = r.opts.Prefix
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: ns, Labels: l},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: DefaultVolumeSize}},
		},
	}
	switch {
	case r.opts.StorageClass != "":
		pvc.Spec.StorageClassName = ptr.To(r.opts.StorageClass)
	case r.opts.VolumeDir != "":
		dir := filepath.Join(r.opts.VolumeDir, ns, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// Any user of the app's pods writes there, as in a fresh Docker
		// volume the image's user owns.
		if err := os.Chmod(dir, 0o777); err != nil {
			return err
		}
		pvName := objectName("", ns, "volume", name)
		pv := &corev1.PersistentVolume{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
			ObjectMeta: metav1.ObjectMeta{Name: pvName, Labels: l},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: DefaultVolumeSize},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              hostPathClass,
				ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: claim},
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: ptr.To(corev1.HostPathDirectory)},
				},
			},
		}
		if got, err := r.cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); err == nil && !r.owned(got) {
			return fmt.Errorf("volume %s: a PersistentVolume %s exists and is not moorage's: moorage never touches it", name, pvName)
		} else if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := r.apply(ctx, "", pv); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		pvc.Spec.StorageClassName = ptr.To(hostPathClass)
		pvc.Spec.VolumeName = pvName
	default:
		if ok, err := r.hasDefaultClass(ctx); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("volume %s: the cluster has no default StorageClass: give the server --kube-storage-class, or --kube-volume-dir on a single-node cluster whose node is this machine: %w", name, runtime.ErrNotSupported)
		}
	}
	if err := r.apply(ctx, ns, pvc); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// hasDefaultClass reports whether the cluster has a default StorageClass.
func (r *Runtime) hasDefaultClass(ctx context.Context) (bool, error) {
	cls, err := r.cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, c := range cls.Items {
		if isDefaultClass(&c) {
			return true, nil
		}
	}
	return false, nil
}

func isDefaultClass(c *storagev1.StorageClass) bool {
	return c.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
}

// VolumePath is the directory of a hostPath volume (Options.VolumeDir);
// the volumes of a StorageClass are not directories of the server.
func (r *Runtime) VolumePath(ctx context.Context, app, name string) (string, error) {
	if err := seam.Valid(r.life.Check, "app", app, "volume", name); err != nil {
		return "", err
	}
	if r.opts.VolumeDir == "" || r.opts.StorageClass != "" {
		return "", fmt.Errorf("volume %s of %s lives in the cluster's storage, not on this machine: %w", name, app, runtime.ErrNotSupported)
	}
	return filepath.Join(r.opts.VolumeDir, r.Namespace(app), name), nil
}

// EnsureNetwork creates the app's namespace: its pods reach each other at
// their IPs on the cluster's pod network.
func (r *Runtime) EnsureNetwork(ctx context.Context, app string) error {
	if err := seam.Valid(r.life.Check, "app", app); err != nil {
		return err
	}
	_, err := r.ensureNamespace(ctx, app)
	return err
}

// Pause is not supported: Kubernetes has no way to freeze a pod.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return fmt.Errorf("pause %s: Kubernetes cannot freeze a pod (stop the instance instead, or back up with the database's own dump): %w", id, runtime.ErrNotSupported)
}

// Resume is not supported (see Pause).
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return fmt.Errorf("resume %s: Kubernetes cannot freeze a pod: %w", id, runtime.ErrNotSupported)
}
