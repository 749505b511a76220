package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newWebhookCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Deploy on pushes to GitHub, GitLab or Gitea (signed webhooks)",
		Long: `A repository host's push webhook to https://SERVER/hooks/APP makes the
server fetch the pushed commit from the repository and run the pipeline
(build, test, check, deploy, notify). Requests are checked against the app's
secret (GitHub's and Gitea's HMAC-SHA256 signature, GitLab's token); a wrong
one gets 401. A delivery seen before is ignored.`,
	}
	var repo, branch string
	var asJSON, newKey bool
	set := &cobra.Command{
		Use:   "set",
		Short: "Set the app's repository and deploy branch, and make a new secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			h, err := c.SetWebhook(cmd.Context(), app, repo, branch, newKey)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(h)
			}
			fmt.Fprintf(g.stdout, "webhook of %s: pushes to %s of %s deploy\n", app, h.Branch, h.Repo)
			fmt.Fprintf(g.stdout, "payload URL: https://SERVER/hooks/%s (content type application/json, push events)\n", app)
			fmt.Fprintf(g.stdout, "secret: %s\n(shown once; `moorage webhook set` again makes a new one)\n", h.Secret)
			if h.DeployKey != "" {
				fmt.Fprintf(g.stdout, "deploy key (add it to the repository, read-only; kept by later `webhook set` unless --new-deploy-key):\n  %s\n", h.DeployKey)
			}
			return nil
		},
	}
	set.Flags().StringVar(&repo, "repo", "", "the repository's clone URL: https://HOST/PATH or git://HOST/PATH (public), or ssh://USER@HOST/PATH or USER@HOST:PATH (fetched with a deploy key the server makes)")
	set.Flags().BoolVar(&newKey, "new-deploy-key", false, "replace the ssh deploy key (the repository must then get the new one)")
	set.Flags().StringVar(&branch, "branch", "main", "the branch whose pushes deploy")
	set.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	set.MarkFlagRequired("repo")
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the app's webhook (not its secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			h, err := c.GetWebhook(cmd.Context(), app)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "webhook of %s: pushes to %s of %s deploy; payload URL https://SERVER/hooks/%s\n", app, h.Branch, h.Repo, app)
			if h.DeployKey != "" {
				fmt.Fprintf(g.stdout, "deploy key: %s\n", h.DeployKey)
			}
			return nil
		},
	}
	cmd.AddCommand(set, show)
	return cmd
}
