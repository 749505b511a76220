package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newBackupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up volumes and databases, list, restore and verify backups",
		Long: `Back up an app's volumes (consistent archives: the instances that mount a
volume are paused while it is copied) and its Postgres accessories (pg_dump,
custom format, in the accessory's own environment). Archives are compressed,
checksummed and kept in the server's backup directory (default
<data-dir>/backups/<app>, or --to DIR). 'backup verify' restores one into a
scratch directory or database and checks it holds data.`,
	}
	cmd.AddCommand(newBackupCreateCmd(g), newBackupListCmd(g), newBackupRestoreCmd(g), newBackupVerifyCmd(g))
	return cmd
}

func newBackupCreateCmd(g *globals) *cobra.Command {
	var req api.BackupRequest
	var o opFlags
	cmd := &cobra.Command{
		Use:   "create [--volume NAME]... [--accessory NAME]... [--to DIR]",
		Short: "Back up volumes and accessories now (all of them when none is named)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			if req.To != "" && !filepath.IsAbs(req.To) {
				return fmt.Errorf("--to %q: give an absolute directory on the server", req.To)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return streamOp(cmd, g, o, "backup of "+app, func(fn func(api.Event)) (client.Result, error) {
				return c.CreateBackup(cmd.Context(), app, req, fn)
			})
		},
	}
	cmd.Flags().StringArrayVar(&req.Volumes, "volume", nil, "a volume to back up (repeatable)")
	cmd.Flags().StringArrayVar(&req.Accessories, "accessory", nil, "an accessory with `backup: postgres` to back up (repeatable)")
	cmd.Flags().StringVar(&req.To, "to", "", "directory on the server for the archives")
	o.add(cmd)
	return cmd
}

func newBackupListCmd(g *globals) *cobra.Command {
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List backups, newest first (ID first on each line)",
		Long: `List backups, newest first: the ID first on each line, after a header line.
-q prints the IDs alone, one a line, for scripts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			bs, err := c.Backups(cmd.Context(), app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(bs)
			}
			if quiet {
				for _, b := range bs {
					fmt.Fprintln(g.stdout, b.ID)
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tTARGET\tSTATUS\tSIZE\tCREATED\tTRIGGER\tVERIFIED")
			for _, b := range bs {
				status := b.Status
				if b.Status == "failed" {
					status = "FAILED: " + firstLine(b.Error)
				}
				verified := "-"
				if !b.VerifiedAt.IsZero() {
					verified = "ok " + ago(b.VerifiedAt)
					if b.VerifyError != "" {
						verified = "FAILED: " + firstLine(b.VerifyError)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Kind, b.Target, status, size(b.Size), ago(b.CreatedAt), b.Trigger, verified)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs, one a line")
	return cmd
}

func newBackupRestoreCmd(g *globals) *cobra.Command {
	var wait bool
	var file string
	var o opFlags
	cmd := &cobra.Command{
		Use:   "restore ID | restore --file ARCHIVE",
		Short: "Restore a backup into the app",
		Long: `Restore a backup into the app it came from. A volume: the instances that mount
it stop, the volume's content is replaced by the archive's, and they start
again, health-gated. A Postgres database: pg_restore --clean in one
transaction while the app runs.

--file ARCHIVE restores an archive the server's store does not list (copied
from another server, or kept after the data dir was lost): the absolute path
of a .tar.gz or .pgdump on the server, with its .json manifest next to it.
Its checksum is verified against the manifest, it is added to 'backup list'
(trigger "import"), then restored.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case file != "" && len(args) > 0:
				return fmt.Errorf("give a backup ID or --file ARCHIVE, not both")
			case file == "" && len(args) != 1:
				return fmt.Errorf("give the ID of a backup (see 'moorage backup list'), or --file ARCHIVE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" && !filepath.IsAbs(file) {
				return fmt.Errorf("--file %q: give the archive's absolute path on the server", file)
			}
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			} else {
				b, err := c.ImportBackup(cmd.Context(), app, file)
				if err != nil {
					return err
				}
				id = b.ID
				fmt.Fprintf(g.stdout, "%s: checksum ok (sha256 %s), imported as %s\n", file, b.SHA256, id)
			}
			return streamOp(cmd, g, o, "restore of "+id, func(fn func(api.Event)) (client.Result, error) {
				return c.RestoreBackup(cmd.Context(), app, id, wait, fn)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
	cmd.Flags().StringVar(&file, "file", "", "restore this archive (absolute path on the server, its manifest next to it)")
	o.add(cmd)
	return cmd
}

func newBackupVerifyCmd(g *globals) *cobra.Command {
	var o opFlags
	cmd := &cobra.Command{
		Use:   "verify ID",
		Short: "Restore a backup into scratch space and check it holds data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			return streamOp(cmd, g, o, "verify of "+args[0], func(fn func(api.Event)) (client.Result, error) {
				return c.VerifyBackup(cmd.Context(), app, args[0], fn)
			})
		},
	}
	o.add(cmd)
	return cmd
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
