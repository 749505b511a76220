// Package imagepush puts a release's image, built by the docker runtime's
// builder, into a registry and names it by digest: what the cluster
// runtimes (swarm, kubernetes) share, so that every node runs the same
// bytes whatever a tag later points at.
package imagepush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Auth gives what a push of tag carries: the X-Registry-Auth header, and
// how to word an error of the push (scrubbed of credentials, with a hint
// when the registry refused them).
type Auth func(ctx context.Context, tag string) (header string, fail func(tag string, err error) error, err error)

// Repo is the registry repository of an app's images on the server whose
// names start with prefix (--docker-prefix): <registry>/<prefix>-<app>.
// Two servers that build on one engine and push to one registry (staging
// and production on one machine, say) never share a repository, so never a
// tag: on a shared repository one server's tag could move to the other's
// image between its tag and its push.
func Repo(registry, prefix, app string) string {
	return strings.TrimSuffix(registry, "/") + "/" + prefix + "-" + app
}

// Push puts the image id of the engine cli into repo as <repo>:<release>
// ("latest" when release is ""), unless the engine already records a
// digest of repo for it, and returns the reference to run:
// <repo>@sha256:<manifest digest>.
func Push(ctx context.Context, cli *client.Client, repo, release, id string, auth Auth, out io.Writer) (string, error) {
	if ref, err := DigestRef(ctx, cli, repo, id); err != nil || ref != "" {
		return ref, err
	}
	tag := repo + ":" + release
	if release == "" {
		tag = repo + ":latest"
	}
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: id, Target: tag}); err != nil {
		return "", fmt.Errorf("tag %s: %w", tag, err)
	}
	begin := time.Now()
	header, fail, err := auth(ctx, tag)
	if err != nil {
		return "", err
	}
	res, err := cli.ImagePush(ctx, tag, client.ImagePushOptions{RegistryAuth: header})
	if err != nil {
		return "", fail(tag, err)
	}
	err = StreamError(res)
	res.Close()
	if err != nil {
		return "", fail(tag, err)
	}
	ref, err := DigestRef(ctx, cli, repo, id)
	if err != nil {
		return "", err
	}
	if ref == "" {
		return "", fmt.Errorf("push %s: the engine recorded no digest for it", tag)
	}
	fmt.Fprintf(out, "pushed image %s to %s in %s\n", ShortID(strings.TrimPrefix(id, "sha256:")), ref, time.Since(begin).Round(time.Millisecond))
	return ref, nil
}

// DigestRef is the <repo>@sha256:... the engine recorded for image id
// when it pushed it there, "" when it has none.
func DigestRef(ctx context.Context, cli *client.Client, repo, id string) (string, error) {
	img, err := cli.ImageInspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", id, err)
	}
	for _, d := range img.RepoDigests {
		if strings.HasPrefix(d, repo+"@") {
			return d, nil
		}
	}
	return "", nil
}

// StreamError reads a stream of JSON messages (load, push) to its end
// and returns the first error one carries.
func StreamError(rd io.Reader) error {
	dec := json.NewDecoder(rd)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// ShortID is the first 12 characters of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
