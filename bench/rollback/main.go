// Command rollback measures how soon `moorage rollback` has the previous
// release serving, against what the same change costs as a new deploy, in
// the same run: it starts `moorage server` on a temporary data dir, deploys
// examples/hello at its default settings twice (so a previous release
// exists; its web stays warm for the default deploy.keep_warm), then, runs
// times on each runtime, rolls back and measures from the command's start
// until the proxy answers with the previous release's message (polled
// every 5 ms), and deploys new code and measures the same. The example's
// defaults matter: its worker waits min_ready 5s and its monitor window is
// 5s, which is what a rollback used to wait for.
//
//	go run ./bench/rollback                        # process and docker, 3 runs each
//	go run ./bench/rollback -runtimes process -runs 5
//
// It exits non-zero when a rollback's median exceeds -max (2s).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moorage/moorage/bench/internal/hello"
)

func main() {
	runtimes := flag.String("runtimes", "process,docker", "comma-separated runtimes to measure")
	runs := flag.Int("runs", 3, "rollbacks (and deploys) per runtime")
	limit := flag.Duration("max", 2*time.Second, "largest allowed median time from `moorage rollback` to the previous release serving")
	bin := flag.String("moorage", "", "use this moorage binary instead of building one")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.BoolVar(&verbose, "v", false, "print each rollback's output (its steps and their times)")
	flag.Parse()

	root, err := hello.RepoRoot()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := hello.TempDir("moorage-rollback-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	if *bin == "" {
		if *bin, err = hello.Build(root, dir); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("| runtime | rollback → previous release serving (median, min–max) | new deploy → serving (median) | ratio |")
	fmt.Println("|---|---|---|---|")
	ok := true
	for _, rt := range strings.Split(*runtimes, ",") {
		r, err := measure(*bin, root, filepath.Join(dir, rt), rt, *runs)
		if err != nil {
			log.Fatalf("%s: %v", rt, err)
		}
		rb, dep := median(r.rollbacks), median(r.deploys)
		fmt.Printf("| %s | %s (%s–%s) | %s | %.3f |\n", rt, ms(rb), ms(slices.Min(r.rollbacks)), ms(slices.Max(r.rollbacks)), ms(dep), float64(rb)/float64(dep))
		ok = ok && rb <= *limit
	}
	if !ok {
		fmt.Printf("a median rollback took longer than %s\n", *limit)
		os.Exit(1)
	}
}

var verbose bool

type result struct{ rollbacks, deploys []time.Duration }

func measure(bin, root, dir, rt string, runs int) (*result, error) {
	app := filepath.Join(dir, "hello")
	if err := hello.Copy(filepath.Join(root, "examples", "hello"), app, false); err != nil {
		return nil, err
	}
	srv, err := hello.Start(bin, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	defer srv.Command("apps", "destroy", "hello", "--yes", "--volumes").Run()

	url := "http://" + srv.Addr + "/"
	deploy := func(msg string) (time.Duration, error) {
		if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte(msg+"\n"), 0o644); err != nil {
			return 0, err
		}
		return timed(srv.Command("deploy", app, "--runtime", rt), url, msg)
	}
	fmt.Fprintf(os.Stderr, "%s: two deploys…\n", rt)
	for _, msg := range []string{"release one", "release two"} {
		if _, err := deploy(msg); err != nil {
			return nil, err
		}
	}
	r := &result{}
	// Each rollback goes back to the release before the deploy it undoes,
	// which serves "release one": v1 first, then the rollback release
	// that copies it.
	for i := range runs {
		d, err := timed(srv.Command("rollback", "-a", "hello"), url, "release one")
		if err != nil {
			return nil, fmt.Errorf("rollback %d: %w", i+1, err)
		}
		r.rollbacks = append(r.rollbacks, d)
		if verbose {
			fmt.Fprint(os.Stderr, lastOutput)
		}
		if d, err = deploy(fmt.Sprintf("release %d", i+3)); err != nil {
			return nil, fmt.Errorf("deploy %d: %w", i+1, err)
		}
		r.deploys = append(r.deploys, d)
		fmt.Fprintf(os.Stderr, "%s: rollback %s, deploy %s\n", rt, ms(r.rollbacks[i]), ms(d))
	}
	return r, nil
}

// timed runs cmd, and returns how long after its start the app at url
// first answered with want in its body; it waits for cmd to end (a
// rollback or deploy goes on through its monitor window) and fails when
// cmd does.
func timed(cmd *exec.Cmd, url, want string) (time.Duration, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := &http.Client{Timeout: 5 * time.Second}
	var served time.Duration
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var cmdErr error
	done := false
	for served == 0 {
		if res, err := c.Get(url); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.Contains(string(b), want) {
				served = time.Since(start)
				break
			}
		}
		if done {
			return 0, fmt.Errorf("%s ended (%v) and the app never answered %q:\n%s", strings.Join(cmd.Args[1:], " "), cmdErr, want, out.String())
		}
		select {
		case cmdErr = <-exited:
			done = true
		case <-tick.C:
		}
	}
	if !done {
		cmdErr = <-exited
	}
	lastOutput = out.String()
	if cmdErr != nil {
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args[1:], " "), cmdErr, out.String())
	}
	return served, nil
}

// lastOutput is the output of the last command timed.
var lastOutput string

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		panic(errors.New("no samples"))
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
