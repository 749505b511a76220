//go:build linux

package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The environment of a process that is in execve reads back empty from
// /proc (the kernel shows none until the new program's stack is laid
// out): Exec must wait for the new program, not run the command with no
// PATH. The process here execs itself over and over.
func TestProcessEnvDuringExec(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh is not on PATH: %v (Debian: dash; every machine the tests run on has it)", err)
	}
	script := filepath.Join(t.TempDir(), "reexec")
	if err := os.WriteFile(script, []byte("#!"+sh+"\nexec \"$0\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(script)
	c.Env = []string{"PATH=/usr/bin:/bin", "MARK=1"}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	pid := c.Process.Pid
	start := startTime(pid)
	n := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); n++ {
		env, err := processEnv(t.Context(), pid, start)
		if err != nil {
			t.Fatalf("read %d: %v", n, err)
		}
		if env["PATH"] != "/usr/bin:/bin" || env["MARK"] != "1" {
			t.Fatalf("read %d of a process in execve: environment %v", n, env)
		}
	}
	t.Logf("%d reads", n)
}

// A process with no environment at all reads back empty at once.
func TestProcessEnvEmpty(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep is not on PATH: %v (Debian: coreutils)", err)
	}
	c := exec.Command(sleep, "600")
	c.Env = []string{}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	pid := c.Process.Pid
	for startTime(pid) == 0 || readStatEnvEnd(pid) == 0 {
		time.Sleep(time.Millisecond) // its execve is under way
	}
	t0 := time.Now()
	env, err := processEnv(t.Context(), pid, startTime(pid))
	if err != nil || len(env) != 0 {
		t.Fatalf("environment %v, %v; want none", env, err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("took %v", d)
	}
	c.Process.Kill()
	c.Wait()
	if _, err := processEnv(t.Context(), pid, 0); err == nil {
		t.Fatal("read the environment of a process that is gone")
	}
}

func readStatEnvEnd(pid int) uint64 {
	st, _ := readStat(pid)
	return st.EnvEnd
}
