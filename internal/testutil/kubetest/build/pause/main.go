// Command pause is the one process of the pod sandbox image of the kubetest
// fixture: it holds the pod's namespaces open, reaps the zombies it inherits
// as PID 1, and exits 0 on SIGINT or SIGTERM. Built static (CGO_ENABLED=0),
// it is the whole of an image made FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
