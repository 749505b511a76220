//go:build linux

package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what /proc/<pid>/stat says about a process.
type procStat struct {
	PID   int
	State byte // R, S, D, Z, X, ...
	PPID  int
	PGID  int
	SID   int
	// Start is the process start time in clock ticks since boot. A pid and
	// its start time name a process unambiguously (pids are reused).
	Start uint64
	// EnvEnd is the end of the environment on the process's stack (field
	// 51, Linux 3.5+): 0 while it is in execve, after its new memory has
	// replaced the old and before the new program's argv and environment
	// are laid out, and when the reader may not see its memory or it has
	// none (a zombie). /proc/<pid>/environ and cmdline read empty then.
	EnvEnd uint64
}

// dead reports whether the process has terminated: a zombie (or dead)
// whose threads are all gone. The main thread of a multi-threaded process
// can be a zombie while other threads still run and hold its files (and
// file locks), so the zombie state alone does not mean much.
func (p procStat) dead() bool {
	if p.State != 'Z' && p.State != 'X' {
		return false
	}
	d, err := os.Open("/proc/" + strconv.Itoa(p.PID) + "/task")
	if err != nil {
		return true
	}
	defer d.Close()
	names, _ := d.Readdirnames(2)
	return len(names) <= 1
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, os.ErrNotExist)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	// "pid (comm) S ppid pgrp session tty tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime priority nice threads itrealvalue
	// starttime ...": comm may contain spaces and parentheses.
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open || closing+2 > len(b) {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	f := strings.Fields(string(b[closing+2:]))
	if len(f) < 20 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	st := procStat{PID: pid, State: f[0][0]}
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.SID, _ = strconv.Atoi(f[3])
	st.Start, _ = strconv.ParseUint(f[19], 10, 64)
	if len(f) > 48 {
		st.EnvEnd, _ = strconv.ParseUint(f[48], 10, 64)
	}
	return st, nil
}

// startTime returns the start time of pid, 0 if it is gone.
func startTime(pid int) uint64 {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.Start
}

// alive reports whether process pid, started at start (0: any), is still
// running (not a zombie).
func alive(pid int, start uint64) bool {
	st, err := readStat(pid)
	if err != nil || st.dead() {
		return false
	}
	return start == 0 || st.Start == start
}

// allProcs lists the processes of the system.
func allProcs() []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]procStat, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// groupMembers returns the live (non-zombie) processes of process group
// pgid.
func groupMembers(pgid int) []procStat {
	var out []procStat
	for _, p := range allProcs() {
		if p.PGID == pgid && !p.dead() {
			out = append(out, p)
		}
	}
	return out
}

// groupStopped reports whether every thread of every live process of
// group pgid is stopped (state T or t), so none of them runs user code.
func groupStopped(pgid int) bool {
	for _, p := range groupMembers(pgid) {
		dir := "/proc/" + strconv.Itoa(p.PID) + "/task"
		tids, err := os.ReadDir(dir)
		if err != nil {
			continue // exited meanwhile
		}
		for _, t := range tids {
			b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
			if err != nil {
				continue
			}
			st, err := parseStat(b)
			if err != nil {
				return false
			}
			switch st.State {
			case 'T', 't', 'Z', 'X':
			default:
				return false
			}
		}
	}
	return true
}

// signalName names a signal the way people write it: "SIGTERM".
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// killGroupWait SIGKILLs process group pgid until none of its members is
// alive (zombies do not count) or timeout passes. It reports whether the
// group is gone. The caller must know the group is its own: either its
// leader is an unreaped child or verified by start time.
func killGroupWait(pgid int, timeout time.Duration) bool {
	if pgid <= 1 {
		return true
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := unix.Kill(-pgid, unix.SIGKILL); errors.Is(err, unix.ESRCH) {
			return true
		}
		if len(groupMembers(pgid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killOrphans kills what is left of a process group whose supervisor is
// gone. When the leader (pid, start) is still alive the group id is
// certainly still its own and the whole group is killed. Otherwise only
// members that belong to session sid and started no earlier than the leader
// are killed, so that a group id reused by an unrelated process is left
// alone.
func killOrphans(pgid, sid, leader int, leaderStart uint64, timeout time.Duration) {
	if pgid <= 1 {
		return
	}
	if leader > 0 && alive(leader, leaderStart) {
		killGroupWait(pgid, timeout)
		return
	}
	deadline := time.Now().Add(timeout)
	for {
		var left int
		for _, p := range groupMembers(pgid) {
			if (sid > 0 && p.SID != sid) || p.Start < leaderStart {
				continue
			}
			left++
			_ = unix.Kill(p.PID, unix.SIGKILL)
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
