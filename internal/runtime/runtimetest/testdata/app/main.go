// Command app is the conformance suite's test program. It uses the
// standard library only, so that every runtime can build it from the same
// context (build.command: env CGO_ENABLED=0 go build -o app .) and run it
// the same way (processes, or a FROM scratch image).
//
//	app serve [-lines N] [-ignore-term] [-hold PATH] [-msg TEXT]
//	                       HTTP on $PORT: /health /env /id /args /exit?code=N
//	                       /log?msg=M&n=N&stream=S /write?vol=V&file=F&data=D /read?vol=V&file=F
//	app print [-n N] [-exit C]   N lines on stdout and stderr, then exit C
//	app sleep DURATION
//	app hold PATH          flock PATH and sleep forever (ignores SIGTERM)
//	app trylock PATH       exit 0 if PATH is not locked, 1 if it is
//	app spawn PATH         start "app hold PATH" in the background, return once it holds
//	app getenv NAME        print $NAME
//	app env                print the environment
//	app cat PATH | app write PATH DATA | app exit CODE | app tty
//	app ttysize            "size ROWS COLS" of its terminal, at the start and on every
//	                       SIGWINCH, until a line (or the end) of input
//	app ls DIR             every path under DIR, its type and mode ("sub/f.txt -rw-r--r--")
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fatal("usage: app serve|print|sleep|hold|trylock|spawn|getenv|env|cat|ls|write|exit|tty ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		serve(args)
	case "print":
		printLines(args)
	case "sleep":
		d, err := time.ParseDuration(arg(args, 0))
		if err != nil {
			fatal(err.Error())
		}
		time.Sleep(d)
	case "hold":
		hold(arg(args, 0))
	case "trylock":
		if locked(arg(args, 0)) {
			fmt.Println("held")
			os.Exit(1)
		}
		fmt.Println("free")
	case "spawn":
		spawn(arg(args, 0))
	case "getenv":
		fmt.Println(os.Getenv(arg(args, 0)))
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
	case "cat":
		if arg(args, 0) == "-" {
			io.Copy(os.Stdout, os.Stdin)
			return
		}
		b, err := os.ReadFile(arg(args, 0))
		if err != nil {
			fatal(err.Error())
		}
		os.Stdout.Write(b)
	case "ls":
		root := arg(args, 0)
		err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			fmt.Println(rel, info.Mode())
			return nil
		})
		if err != nil {
			fatal(err.Error())
		}
	case "write":
		if err := os.WriteFile(arg(args, 0), []byte(arg(args, 1)), 0o644); err != nil {
			fatal(err.Error())
		}
	case "exit":
		code, _ := strconv.Atoi(arg(args, 0))
		os.Exit(code)
	case "tty":
		var t syscall.Termios
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
		if errno == 0 {
			fmt.Println("tty: yes")
		} else {
			fmt.Println("tty: no")
		}
	case "ttysize":
		ttySize()
	default:
		fatal("unknown subcommand " + os.Args[1])
	}
}

// ttySize prints the terminal's size at the start and on every SIGWINCH,
// until a line or the end of input.
func ttySize() {
	winch := make(chan os.Signal, 4)
	signal.Notify(winch, syscall.SIGWINCH)
	print := func() {
		var ws struct{ Row, Col, X, Y uint16 }
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
		if errno != 0 {
			fmt.Printf("size: %v\r\n", errno)
			return
		}
		fmt.Printf("size %d %d\r\n", ws.Row, ws.Col)
	}
	print()
	line := make(chan struct{})
	go func() {
		b := make([]byte, 1)
		for {
			if n, err := os.Stdin.Read(b); err != nil || n == 1 && (b[0] == '\n' || b[0] == '\r') {
				close(line)
				return
			}
		}
	}()
	for {
		select {
		case <-winch:
			print()
		case <-line:
			return
		}
	}
}

func arg(args []string, i int) string {
	if i >= len(args) {
		fatal("missing argument")
	}
	return args[i]
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "app:", msg)
	os.Exit(2)
}

var signalNames = map[os.Signal]string{
	syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGQUIT: "SIGQUIT",
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	lines := fs.Int("lines", 0, "lines to print at start")
	ignoreTerm := fs.Bool("ignore-term", false, "ignore SIGTERM")
	holdPath := fs.String("hold", "", "start a grandchild that holds a lock on this file")
	fs.String("msg", "", "a message (echoed by /args)")
	fs.Parse(args)

	b := make([]byte, 8)
	rand.Read(b)
	boot := hex.EncodeToString(b)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM && *ignoreTerm {
				fmt.Println("ignoring SIGTERM")
				continue
			}
			fmt.Printf("received %s, exiting\n", signalNames[sig])
			os.Exit(0)
		}
	}()

	if *holdPath != "" {
		self, _ := os.Executable()
		c := exec.Command(self, "hold", *holdPath)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fatal(err.Error())
		}
	}
	for i := 1; i <= *lines; i++ {
		fmt.Printf("hello %d\n", i)
		fmt.Fprintf(os.Stderr, "warn %d\n", i)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		json.NewEncoder(w).Encode(env)
	})
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"boot": boot, "pid": os.Getpid()})
	})
	mux.HandleFunc("/args", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(os.Args[1:]) })
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "exiting", code)
		w.(http.Flusher).Flush()
		go func() {
			time.Sleep(50 * time.Millisecond)
			os.Exit(code)
		}()
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		n = max(n, 1)
		out := os.Stdout
		if q.Get("stream") == "stderr" {
			out = os.Stderr
		}
		for i := 1; i <= n; i++ {
			if n == 1 {
				fmt.Fprintln(out, q.Get("msg"))
			} else {
				fmt.Fprintf(out, "%s %d\n", q.Get("msg"), i)
			}
		}
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := filepath.Join(volume(q.Get("vol")), q.Get("file"))
		if err := os.WriteFile(p, []byte(q.Get("data")), 0o644); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		b, err := os.ReadFile(filepath.Join(volume(q.Get("vol")), q.Get("file")))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Write(b)
	})
	addr := ":" + os.Getenv("PORT")
	fmt.Println("listening on", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fatal(err.Error())
	}
}

// volume returns the directory of a mounted volume.
func volume(name string) string {
	return os.Getenv("MOORAGE_VOLUME_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
}

func printLines(args []string) {
	fs := flag.NewFlagSet("print", flag.ExitOnError)
	n := fs.Int("n", 1, "lines")
	code := fs.Int("exit", 0, "exit code")
	fs.Parse(args)
	for i := 1; i <= *n; i++ {
		fmt.Printf("out %d\n", i)
		fmt.Fprintf(os.Stderr, "err %d\n", i)
	}
	os.Exit(*code)
}

func hold(path string) {
	signal.Ignore(syscall.SIGTERM)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fatal(err.Error())
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		fatal(err.Error())
	}
	fmt.Println("holding", path)
	for {
		time.Sleep(time.Hour)
	}
}

func locked(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fatal(err.Error())
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

func spawn(path string) {
	self, _ := os.Executable()
	c := exec.Command(self, "hold", path)
	if err := c.Start(); err != nil {
		fatal(err.Error())
	}
	deadline := time.Now().Add(30 * time.Second)
	for !locked(path) {
		if time.Now().After(deadline) {
			fatal("the grandchild never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("spawned", c.Process.Pid)
}
