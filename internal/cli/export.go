package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newExportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print an app's release in another tool's format (kubernetes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newExportKubernetesCmd(g))
	return cmd
}

func newExportKubernetesCmd(g *globals) *cobra.Command {
	var release, namespace, image string
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Print a release's Kubernetes manifests as plain YAML",
		Long: `Print the Kubernetes manifests of a release (the active one unless --release)
as plain YAML documents, in the order they would be applied: the release's
ConfigMap and Secret, volume claims, accessories (StatefulSets with their
Services and Secrets), one Job per release task and check, one Deployment
per service, and the Services of routed services. For people who keep
manifests in git; docs/kubernetes.md describes each object.

Secret values are never printed, and never leave the server for this: each
Secret is printed commented out with its keys and <redacted> values, under
the kubectl command that creates it with the real ones.

The manifests run the release's image: a swarm release's image by digest,
or the spec's image:. A release of the process runtime, or one built on the
server's Docker, has no image a cluster can pull: build and push one, and
pass it with --image.`,
		Example: `  moorage export kubernetes -a shop > k8s/shop.yaml
  moorage export kubernetes -a shop --release v7 --namespace shop-staging
  moorage export kubernetes -a hello --image registry.example.com/hello@sha256:...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			out, err := c.ExportKubernetes(cmd.Context(), app, release, namespace, image)
			if err != nil {
				return err
			}
			y := out.YAML
			if !strings.HasSuffix(y, "\n") {
				y += "\n"
			}
			_, err = fmt.Fprint(g.stdout, y)
			return err
		},
	}
	cmd.Flags().StringVar(&release, "release", "", "the release to print, vN (default: the active release)")
	cmd.Flags().StringVar(&namespace, "namespace", "", "the namespace of the objects (default: the app's name)")
	cmd.Flags().StringVar(&image, "image", "", "the image the manifests run, REGISTRY/NAME@sha256:... or :tag (default: the release's own, when a cluster can pull it)")
	return cmd
}
