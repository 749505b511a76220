package api

// KubernetesExport is GET /v1/apps/{app}/export/kubernetes (`moorage
// export kubernetes`): one release's Kubernetes manifests as plain YAML.
// The server never opens the release's secrets for it: the Secret objects
// carry their keys alone, printed commented out with redacted values.
type KubernetesExport struct {
	App       string `json:"app"`
	Release   string `json:"release"` // "v3"
	Namespace string `json:"namespace"`
	Image     string `json:"image"` // the image reference the manifests run
	YAML      string `json:"yaml"`
}

// Query parameters of GET /v1/apps/{app}/export/kubernetes.
const (
	QueryExportRelease   = "release"   // "v3" or "3"; "" is the active release
	QueryExportNamespace = "namespace" // "" is the app's name
	QueryExportImage     = "image"     // "" is the release's own image
)
