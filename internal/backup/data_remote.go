package backup

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// backupRemoteVolume is backupVolume for a runtime whose volumes are not
// on the server (swarm): the runtime reads the volume where it is (on its
// node) as a tar stream, which is repacked into the same archive as a
// local volume's, on the server. The instances that mount it are paused
// meanwhile, as for a local volume.
func (m *Manager) backupRemoteVolume(ctx context.Context, rel *store.Release, rt runtime.Runtime, va runtime.VolumeArchiver, volume string, b *store.Backup, out io.Writer) error {
	ins, err := m.e.InstancesMounting(ctx, rel, volume)
	if err != nil {
		return err
	}
	resume, err := m.pauseAll(ctx, rel.App, rt, ins, out)
	if err != nil {
		return err
	}
	m.e.Failpoint("backup:paused")
	start := time.Now()
	var files int
	where := ""
	err = writeArchive(b, func(w io.Writer) error {
		content, node, err := va.ArchiveVolume(ctx, rel.App, volume)
		if err != nil {
			return err
		}
		defer content.Close()
		where = node
		st, err := archive.Repack(content, w, archive.PackOptions{KeepOwner: true, SkipSpecial: true,
			Skipped: func(rel string) { fmt.Fprintf(out, "skipped %s (not a file, directory or symlink)\n", rel) }})
		files = st.Files
		return err
	})
	resume()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d entries archived from %s; writers paused for %s\n", files, where, time.Since(start).Round(time.Millisecond))
	return nil
}
