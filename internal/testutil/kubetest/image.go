package kubetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ImageFile is one file of an image built by LoadImage.
type ImageFile struct {
	Path   string      // absolute path in the image
	Mode   os.FileMode // 0644 when zero
	Data   []byte      // the content, or
	Source string      // a file on this machine to copy, or
	Link   string      // the target of a symbolic link
}

// ImageConfig is what the image runs by default.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
}

// LoadImage builds a one-layer image FROM scratch with files and loads it
// into the node's containerd under ref (a name with a registry host, such
// as moorage.test/web:1), where pods with imagePullPolicy Never or
// IfNotPresent find it. The image has no PATH unless cfg.Env sets one:
// commands need absolute paths.
func (c *Cluster) LoadImage(ctx context.Context, ref string, files []ImageFile, cfg ImageConfig) error {
	return loadImage(ctx, c.ContainerdSocket, filepath.Join(c.Dir, "images"), ref, files, cfg)
}

func loadImage(ctx context.Context, socket, workDir, ref string, files []ImageFile, cfg ImageConfig) error {
	archive, err := imageArchive(ref, files, cfg)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(workDir, "image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(archive); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", "--address", socket, "--namespace", "k8s.io",
		"images", "import", f.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", ref, err, out)
	}
	return nil
}

// imageArchive is a `docker save` archive (what `ctr images import`
// reads) of an image with one layer holding files.
func imageArchive(ref string, files []ImageFile, cfg ImageConfig) ([]byte, error) {
	layer, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	diffID := sha256.Sum256(layer)
	config := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config": map[string]any{
			"Entrypoint": cfg.Entrypoint,
			"Cmd":        cfg.Cmd,
			"Env":        cfg.Env,
			"WorkingDir": cfg.WorkingDir,
		},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])},
		},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	configSum := sha256.Sum256(configJSON)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{ref},
		"Layers":   []string{"layer.tar"},
	}})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, configJSON}, {"layer.tar", layer}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerTar is the layer of files, with their parent directories.
func layerTar(files []ImageFile) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("%q: image paths are absolute", f.Path)
		}
		for d := path.Dir(path.Clean(f.Path)); d != "/"; d = path.Dir(d) {
			dirs[strings.TrimPrefix(d, "/")] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range sorted {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		if f.Link != "" {
			if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: f.Link, Mode: 0o777, Typeflag: tar.TypeSymlink, ModTime: mtime}); err != nil {
				return nil, err
			}
			continue
		}
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, err
			}
			if f.Mode == 0 {
				if st, err := os.Stat(f.Source); err == nil {
					mode = int64(st.Mode().Perm())
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
