package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

// opFlags are the flags of commands that run an operation on the server.
type opFlags struct {
	json, verbose, dryRun bool
}

func (o *opFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print events as NDJSON")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "also print the plan")
}

// addDryRun adds --dry-run, to commands whose operation can only plan.
func (o *opFlags) addDryRun(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the plan that would run (the text its journal would record) and change nothing")
}

// streamOp runs an operation, rendering its events, and turns its outcome
// into the exit code: 0 when it succeeded, 1 otherwise.
func streamOp(cmd *cobra.Command, g *globals, o opFlags, what string, call func(fn func(api.Event)) (client.Result, error)) error {
	p := newProgress(g, o.json, o.verbose)
	p.dryRun = o.dryRun
	res, err := call(p.Event)
	if err == nil && res.Deploy != 0 {
		what = fmt.Sprintf("%s (#%d)", what, res.Deploy)
	}
	p.Finish(what, res, err)
	if err != nil {
		if cmd.Context().Err() != nil {
			return &exitError{code: 130, err: fmt.Errorf("interrupted; the operation goes on on the server: see `moorage deploys`")}
		}
		return &exitError{code: 1}
	}
	if !res.OK() {
		return &exitError{code: 1}
	}
	return nil
}
