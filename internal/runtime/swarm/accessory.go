package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
)

// accessoryImage is the image an accessory's service names, once it is on
// node (a node ID: the one the accessory is pinned to). An image the
// manager has (built or loaded there, as on the docker runtime, where
// moorage never builds an accessory's image) is shipped to that node like
// a release's image (`docker save` on the manager, `docker load` on the
// node) and named by its ID: the node runs those bytes, and nothing is
// asked of a registry. An image the manager does not have is named as the
// spec gives it, and the node pulls it (with the registry's login, if any),
// as it does when no Docker API is known for the node (--swarm-node).
func (r *Runtime) accessoryImage(ctx context.Context, s *runtime.InstanceSpec, node string) (string, error) {
	ref := s.Image
	img, err := r.cli.ImageInspect(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return ref, nil
		}
		return "", fmt.Errorf("image %s on the manager: %w", ref, err)
	}
	id := img.ID
	if node == r.self {
		return id, nil
	}
	n, ok := r.watch.node(node)
	if !ok {
		if err := r.refreshNodes(ctx); err != nil {
			return "", err
		}
		if n, ok = r.watch.node(node); !ok {
			return "", fmt.Errorf("node %s is not in the swarm", node)
		}
	}
	if _, err := r.node(ctx, n.Hostname); errors.Is(err, runtime.ErrNotSupported) {
		// No Docker API for that node: it pulls the image as named.
		r.log.Info("no Docker API is known for an accessory's node: the node pulls its image (give the server --swarm-node to ship it)", "app", s.App, "accessory", s.Service, "image", ref, "node", n.Hostname)
		return ref, nil
	}
	did, err := r.shipTo(ctx, n.Hostname, id)
	if err != nil {
		return "", fmt.Errorf("ship the image %s of accessory %s to %s, the node it is pinned to: %w", ref, s.Service, n.Hostname, err)
	}
	if did {
		r.log.Info("shipped an accessory's image to its node", "app", s.App, "accessory", s.Service, "image", ref, "id", shortID(strings.TrimPrefix(id, "sha256:")), "node", n.Hostname)
	}
	return id, nil
}
