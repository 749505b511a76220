package cli

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
)

// gitDir is where the server keeps app's bare repository.
func gitDir(dataDir, app string) string { return filepath.Join(dataDir, "git", app+".git") }

var appNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func newGitRemoteCmd(g *globals) *cobra.Command {
	var branch string
	cmd := &cobra.Command{
		Use:   "git-remote APP",
		Short: "Set up `git push` deploys of APP (run on the server)",
		Long: `Create APP's bare repository on the server and print the two lines that make
'git push' deploy it: the authorized_keys entry that sends a key's pushes to
moorage (a forced command, like Dokku's), and the git remote to add.

A push of the deploy branch (--branch, default main) runs the pipeline
(build, test, check, deploy) and is refused, the branch not updated, when the
pipeline fails. A push of another branch is kept and deploys nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if !appNameRe.MatchString(app) {
				return &exitError{code: 2, err: fmt.Errorf("app name %q: use lower-case letters, digits and '-'", app)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			if v.DataDir == "" {
				return fmt.Errorf("the server does not say its data dir; upgrade it")
			}
			if _, err := os.Stat(v.DataDir); err != nil {
				return fmt.Errorf("run git-remote on the server itself (its data dir %s is not here): %w", v.DataDir, err)
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			repo := gitDir(v.DataDir, app)
			if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
				if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch="+branch, repo).CombinedOutput(); err != nil {
					return fmt.Errorf("git init --bare %s: %v: %s", repo, err, out)
				}
			}
			if out, err := exec.Command("git", "--git-dir", repo, "config", "moorage.branch", branch).CombinedOutput(); err != nil {
				return fmt.Errorf("git config: %v: %s", err, out)
			}
			host := c.Addr()
			hook := fmt.Sprintf("#!/bin/sh\n# moorage: a push of the deploy branch runs the pipeline.\nexec %s --host %s git-hook %s\n", shq(bin), shq(host), app)
			if err := os.WriteFile(filepath.Join(repo, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
				return err
			}
			user := os.Getenv("USER")
			if user == "" {
				user = "USER"
			}
			fmt.Fprintf(g.stdout, "repository: %s (deploy branch %s)\n", repo, branch)
			fmt.Fprintf(g.stdout, "add to ~%s/.ssh/authorized_keys, before each key allowed to push:\n", user)
			fmt.Fprintf(g.stdout, "  %s\n", forcedCommand(bin, host))
			fmt.Fprintf(g.stdout, "then, in the app's repository:\n  git remote add moorage ssh://%s@SERVER/%s\n  git push moorage %s\n", user, app, branch)
			return nil
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "main", "the branch whose pushes deploy")
	return cmd
}

// forcedCommand is the authorized_keys options of a key that pushes.
// The command is quoted for the shell sshd runs it with, and for the
// authorized_keys option around it (where a " is written \").
func forcedCommand(bin, host string) string {
	command := strings.ReplaceAll(shq(bin)+" --host "+shq(host)+" git-shell", `"`, `\"`)
	return fmt.Sprintf(`command="%s",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty`, command)
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// newGitShellCmd is the forced command: it lets a key run git-receive-pack
// (and git-upload-pack) on an app's repository and nothing else.
func newGitShellCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "git-shell",
		Short:  "The ssh forced command of git push deploys (see git-remote)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			orig := os.Getenv("SSH_ORIGINAL_COMMAND")
			verb, arg, _ := strings.Cut(orig, " ")
			if verb != "git-receive-pack" && verb != "git-upload-pack" {
				return &exitError{code: 1, err: fmt.Errorf("this key only pushes to moorage: use `git push ssh://USER@SERVER/APP BRANCH` (got %q)", orig)}
			}
			app := strings.Trim(strings.TrimSpace(arg), `'"`)
			app = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(app, "~/"), "/"), ".git")
			if !appNameRe.MatchString(app) {
				return &exitError{code: 1, err: fmt.Errorf("%q is not an app name: push to ssh://USER@SERVER/APP", app)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			repo := gitDir(v.DataDir, app)
			if _, err := os.Stat(filepath.Join(repo, "HEAD")); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s has no repository on this server: run `moorage git-remote %s` there first", app, app)}
			}
			path, err := exec.LookPath(verb)
			if err != nil {
				return fmt.Errorf("%s is not installed on the server (install git)", verb)
			}
			return syscall.Exec(path, []string{verb, repo}, os.Environ())
		},
	}
}

// newGitHookCmd is the pre-receive hook: a push of the deploy branch runs
// the pipeline on the pushed commit, and fails (the ref is not updated)
// when the pipeline fails.
func newGitHookCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "git-hook APP",
		Short:  "The pre-receive hook of git push deploys (see git-remote)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			git := func(args ...string) string {
				out, _ := exec.Command("git", args...).Output()
				return strings.TrimSpace(string(out))
			}
			branch := git("config", "moorage.branch")
			if branch == "" {
				branch = "main"
			}
			const zero = "0000000000000000000000000000000000000000"
			sc := bufio.NewScanner(os.Stdin)
			failed := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 3 {
					continue
				}
				newRev, ref := f[1], f[2]
				if ref != "refs/heads/"+branch {
					fmt.Fprintf(g.stdout, "moorage: %s is not %s's deploy branch (%s): kept, nothing deployed\n", strings.TrimPrefix(ref, "refs/heads/"), app, branch)
					continue
				}
				if strings.Trim(newRev, "0") == "" || newRev == zero {
					fmt.Fprintf(g.stdout, "moorage: %s deleted: nothing deployed\n", branch)
					continue
				}
				if err := pushDeploy(cmd, g, app, branch, newRev, git); err != nil {
					fmt.Fprintf(g.stdout, "moorage: %v\n", err)
					failed = true
				}
			}
			if failed {
				return &exitError{code: 1, err: fmt.Errorf("push refused: the pipeline failed; %s was not updated and the active release is unchanged", branch)}
			}
			return nil
		},
	}
}

func pushDeploy(cmd *cobra.Command, g *globals, app, branch, rev string, git func(...string) string) error {
	dir, err := os.MkdirTemp("", "moorage-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	archive := exec.Command("git", "archive", "--format=tar", rev)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var errb strings.Builder
	archive.Stderr, untar.Stderr = &errb, &errb
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return fmt.Errorf("git archive %s: %v: %s", rev, err, errb.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("unpack %s: %v: %s", rev, err, errb.String())
	}
	commit := client.Commit{SHA: rev, Branch: branch, Author: git("log", "-1", "--format=%an <%ae>", rev), Message: git("log", "-1", "--format=%s", rev),
		Describe: git("describe", "--always", "--tags", rev)}
	sp, err := loadSpec(dir, "")
	if err != nil {
		return err
	}
	if sp.App != app {
		return fmt.Errorf("the pushed moorage.yaml is for app %q, but this repository deploys %s: push it to ssh://USER@SERVER/%s", sp.App, app, sp.App)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "moorage: deploying %s %s\n", app, rev[:min(12, len(rev))])
	p := newProgress(g, false, false)
	res, err := c.Pipeline(cmd.Context(), dir, commit, client.DeployOptions{}, p.Event)
	p.Finish(opTitle("pipeline", res.Deploy, app), res, err)
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("pipeline #%d %s", res.Deploy, res.Status)
	}
	return nil
}
