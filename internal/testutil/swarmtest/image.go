package swarmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// ImageOptions describe a test image.
type ImageOptions struct {
	// Ref is the name:tag it is loaded as (default
	// "moorage-swarmtest:latest").
	Ref string
	// Pad adds a file /pad of this many pseudo-random bytes, to give the
	// image a size (a busybox image alone is about 1 MB).
	Pad int
	// Files are extra regular files (path without leading slash → content).
	Files map[string]string
}

// Image is a test image as a `docker save` archive, built here from
// /bin/busybox, byte for byte the same for the same options: loaded on any
// engine it has the same image ID, so every node runs the same bytes.
type Image struct {
	Ref string // name:tag
	ID  string // sha256:… of its config: the same on every node it is loaded on
	Tar []byte // the archive, for ImageLoad
}

// busyboxApplets get a symlink in /bin, so that commands may name them
// without /bin/busybox (PATH is /bin).
var busyboxApplets = []string{"sh", "httpd", "sleep", "echo", "cat", "hostname", "nc", "wget", "ls", "true", "false", "kill", "date", "env"}

// created is every test image's creation time: a constant, so the image ID
// depends on the content only.
var created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildImage makes a test image: busybox (httpd, sh, nc...), a writable
// /www and /tmp, and what opts add. Nothing is pulled or built by an
// engine.
func BuildImage(opts ImageOptions) (*Image, error) {
	if opts.Ref == "" {
		opts.Ref = "moorage-swarmtest:latest"
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("swarmtest image: %w", err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	hdr := func(h *tar.Header) {
		h.ModTime, h.Uname, h.Gname, h.Format = created, "root", "root", tar.FormatPAX
		if err == nil {
			err = tw.WriteHeader(h)
		}
	}
	write := func(b []byte) {
		if err == nil {
			_, err = tw.Write(b)
		}
	}
	for _, d := range []string{"bin/", "etc/", "www/", "tmp/", "proc/", "sys/", "dev/"} {
		mode := int64(0o755)
		if d == "tmp/" || d == "www/" {
			mode = 0o1777
		}
		hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode})
	}
	hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	write(bb)
	for _, a := range busyboxApplets {
		hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
	}
	passwd := "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644, Size: int64(len(passwd))})
	write([]byte(passwd))
	names := make([]string, 0, len(opts.Files))
	for name := range opts.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		body := opts.Files[name]
		hdr(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(name, "/"), Mode: 0o755, Size: int64(len(body))})
		write([]byte(body))
	}
	if opts.Pad > 0 {
		pad := make([]byte, opts.Pad)
		r := rand.New(rand.NewPCG(uint64(opts.Pad), 42))
		for i := 0; i+8 <= len(pad); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				pad[i+j] = byte(v >> (8 * j))
			}
		}
		hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "pad", Mode: 0o644, Size: int64(len(pad))})
		write(pad)
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("swarmtest image: layer: %w", err)
	}
	layerSum := sha256.Sum256(layer.Bytes())
	diffID := "sha256:" + hex.EncodeToString(layerSum[:])

	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      created.Format(time.RFC3339),
		"config": map[string]any{
			"Env":        []string{"PATH=/bin"},
			"WorkingDir": "/",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": created.Format(time.RFC3339), "created_by": "swarmtest.BuildImage"}},
	})
	if err != nil {
		return nil, err
	}
	configSum := sha256.Sum256(config)
	configHex := hex.EncodeToString(configSum[:])
	layerDir := hex.EncodeToString(layerSum[:])
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configHex + ".json",
		"RepoTags": []string{opts.Ref},
		"Layers":   []string{layerDir + "/layer.tar"},
	}})
	if err != nil {
		return nil, err
	}

	var out bytes.Buffer
	tw = tar.NewWriter(&out)
	file := func(name string, body []byte) {
		hdr(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		write(body)
	}
	hdr(&tar.Header{Typeflag: tar.TypeDir, Name: layerDir + "/", Mode: 0o755})
	file(layerDir+"/layer.tar", layer.Bytes())
	file(configHex+".json", config)
	file("manifest.json", manifest)
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("swarmtest image: archive: %w", err)
	}
	return &Image{Ref: opts.Ref, ID: "sha256:" + configHex, Tar: out.Bytes()}, nil
}

// LoadImage loads img on every node at once (no registry) and returns how
// long that took.
func (c *Cluster) LoadImage(ctx context.Context, img *Image) (time.Duration, error) {
	begin := time.Now()
	err := c.each(func(n *Node) error {
		if !n.Alive() {
			return nil
		}
		return n.LoadImage(ctx, img)
	})
	return time.Since(begin), err
}

// LoadImage loads img on n and checks that n has it under img.ID.
func (n *Node) LoadImage(ctx context.Context, img *Image) error {
	res, err := n.Client.ImageLoad(ctx, bytes.NewReader(img.Tar), client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("%s: load %s: %w", n.Name, img.Ref, err)
	}
	defer res.Close()
	if err := jsonStreamError(res); err != nil {
		return fmt.Errorf("%s: load %s: %w", n.Name, img.Ref, err)
	}
	got, err := n.Client.ImageInspect(ctx, img.Ref)
	if err != nil {
		return fmt.Errorf("%s: inspect %s after load: %w", n.Name, img.Ref, err)
	}
	if got.ID != img.ID {
		return fmt.Errorf("%s: %s loaded as %s, want %s", n.Name, img.Ref, got.ID, img.ID)
	}
	return nil
}

// jsonStreamError reads a stream of JSON messages (load, push, pull) to
// its end and returns the first error one carries.
func jsonStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
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
			return fmt.Errorf("%s", m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
	}
}
