// Command moorage deploys multi-process web apps onto a server.
package main

import (
	"os"

	"github.com/moorage/moorage/internal/cli"
	"github.com/moorage/moorage/internal/runtime/process"
	"github.com/moorage/moorage/internal/server"
)

func main() {
	process.MaybeRunShim() // instance supervisors re-execute this binary
	os.Exit(cli.Main(os.Args[1:], server.Host))
}
