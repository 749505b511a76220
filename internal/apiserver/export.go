package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/runtime/kubernetes"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
	"k8s.io/apimachinery/pkg/util/validation"
)

// exportKubernetes prints a release's Kubernetes manifests (`moorage
// export kubernetes`): the mapping of internal/runtime/kubernetes applied
// to the release's spec, image, config values and the app's scale. The
// release's secrets are never opened: their keys alone make the Secret
// objects, which the printer comments out with redacted values.
func (s *Server) exportKubernetes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	name := r.PathValue("app")
	a, err := s.Engine.Store().GetApp(ctx, name)
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	version := a.Current
	if v := q.Get(api.QueryExportRelease); v != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("--release %q: name a release as vN (see moorage releases -a %s)", v, name))
			return
		}
		version = n
	} else if version == 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s has no active release: name one with --release vN (see moorage releases -a %s)", name, name))
		return
	}
	rel, err := s.Engine.Store().GetRelease(ctx, name, version)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s has no release %s (see moorage releases -a %s)", name, store.ReleaseID(version), name))
			return
		}
		writeErr(w, err)
		return
	}
	ns := q.Get(api.QueryExportNamespace)
	if ns == "" {
		ns = name
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("--namespace %q is not a Kubernetes namespace name: %s", ns, strings.Join(errs, "; ")))
		return
	}
	image, err := exportImage(rel, q.Get(api.QueryExportImage))
	if err != nil {
		writeError(w, http.StatusBadRequest, "no_image", err.Error())
		return
	}
	// Secrets: their keys, never their values (the release keeps them
	// sealed, and they stay so).
	secrets := map[string]string{}
	for k := range rel.Config.Secrets {
		secrets[k] = ""
	}
	objs, err := kubernetes.Manifests(kubernetes.Release{
		App: name, Version: rel.Version, Spec: containerSpec(rel), Image: image,
		Formation: a.Formation, Config: rel.Config.Env, Secrets: secrets,
	}, kubernetes.Options{Namespace: ns})
	if err != nil {
		writeError(w, http.StatusBadRequest, "unsupported", fmt.Sprintf("%s of %s cannot be exported to Kubernetes: %v", rel.ID(), name, err))
		return
	}
	y, err := objs.Print(kubernetes.PrintOptions{})
	if err != nil {
		writeErr(w, err)
		return
	}
	header := fmt.Sprintf("# moorage export kubernetes: %s of %s, namespace %s, image %s.\n", rel.ID(), name, ns, image)
	writeJSON(w, http.StatusOK, api.KubernetesExport{App: name, Release: rel.ID(), Namespace: ns, Image: image, YAML: header + y})
}

// containerSpec is the release's spec as a container runtime reads it
// (ports default as on docker): a release deployed on the process runtime
// has the same app. If the spec does not parse so (or was not kept), the
// stored spec is mapped as it is, and the mapping says what it lacks.
func containerSpec(rel *store.Release) *spec.Spec {
	if rel.SpecYAML != "" && (rel.Spec == nil || !spec.ContainerRuntime(rel.Spec.Runtime)) {
		if sp, err := spec.ParseFor("moorage.yaml", []byte(rel.SpecYAML), spec.RuntimeDocker); err == nil {
			return sp
		}
	}
	return rel.Spec
}

// exportImage is the image the release's manifests run: the one asked
// for, else the release's own when a cluster can pull it: a swarm
// release's (pushed to its registry, by digest) or the spec's image:.
// The process runtime's releases are directories, and the docker
// runtime's built images live in the server's Docker alone: those need
// --image.
func exportImage(rel *store.Release, asked string) (string, error) {
	switch {
	case asked != "":
		if strings.ContainsAny(asked, " \t\r\n") {
			return "", fmt.Errorf("--image %q: an image reference has no spaces", asked)
		}
		return asked, nil
	case strings.Contains(rel.Artifact.Ref, "@sha256:"):
		return rel.Artifact.Ref, nil
	case rel.Spec != nil && rel.Spec.Image != "":
		return rel.Spec.Image, nil
	}
	why := fmt.Sprintf("it was built on this server's Docker (%s) and is in no registry", rel.Artifact.Ref)
	if slices.Contains([]string{spec.RuntimeProcess, ""}, rel.Runtime) {
		why = "it ran on the process runtime, which runs a directory, not an image"
	}
	return "", fmt.Errorf("%s of %s has no image a cluster can pull: %s; build and push an image of this code, and pass it with --image REGISTRY/NAME@sha256:... (or :tag)", rel.ID(), rel.App, why)
}
