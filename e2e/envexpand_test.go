package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env values expand moorage's own variables, or the deploy is refused
// naming the service and key; config values and secrets stay literal. A
// process-runtime accessory runs the app's own script from its upload, and
// a program that is not there is reported with the directory looked in.
func TestEnvExpansionAndAccessoryFiles(t *testing.T) {
	parallel(t)
	s := startServer(t)
	port := strings.Split(freePort(t), ":")[1]
	app := s.hello(t, append(fastSpec,
		"    replicas: 2\n", "    replicas: 1\n    env: {DATA_FILE: $MOORAGE_VOLUME_DATA/x, LITERAL: \"pa$$word\", WHO: \"${MOORAGE_APP}-${MOORAGE_SERVICE}\", DB: $MOORAGE_ACCESSORY_ACC_ADDR}\n",
		"volumes:", `accessories:
  acc:
    command: ./bin/missing.sh
    port: `+port+`
    env: {D: $MOORAGE_VOLUME_ACCDATA/sub, FILES: $MOORAGE_APP_DIR}
    volumes: ["accdata:/data"]
    health: {command: "test -e $MOORAGE_VOLUME_ACCDATA/out", interval: 1s}
volumes:`)...)
	if err := os.MkdirAll(filepath.Join(app, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"D=$D\" \"FILES=$FILES\" \"PWD=$(pwd)\" \"ARG0=$0\" > \"$MOORAGE_VOLUME_ACCDATA/out.tmp\"\nmv \"$MOORAGE_VOLUME_ACCDATA/out.tmp\" \"$MOORAGE_VOLUME_ACCDATA/out\"\nexec sleep 3600\n"
	if err := os.WriteFile(filepath.Join(app, "bin", "acc.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	// A variable moorage does not set: refused before anything runs,
	// naming the service and the key.
	editSpec(t, app, "LITERAL: \"pa$$word\"", "LITERAL: \"pa$$word\", HOMEDIR: $HOME/x")
	out := s.deploy(app, 2)
	if !strings.Contains(out, "services.web.env.HOMEDIR: $HOME would be taken literally") || !strings.Contains(out, "write $$ for a literal $") {
		t.Fatalf("deploy with $HOME in an env value:\n%s", out)
	}
	editSpec(t, app, ", HOMEDIR: $HOME/x", "")

	// The accessory's program is not in the upload: the error says where
	// it looked.
	out = s.deploy(app, 1)
	files := filepath.Join(s.dataDir, "accessory-files", "hello-acc")
	if !strings.Contains(out, "./bin/missing.sh: no such file in "+files) {
		t.Fatalf("deploy with a missing accessory program:\n%s", out)
	}

	editSpec(t, app, "./bin/missing.sh", "./bin/acc.sh")
	s.mustRun("config", "set", "-a", "hello", "CFG=a$HOME")
	s.mustRun("config", "set", "--secret", "-a", "hello", "SEC=s$PORT$$")
	s.deploy(app, 0)

	vol := s.volumePath("hello", "accdata")
	b, err := os.ReadFile(filepath.Join(vol, "out"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"D=" + vol + "/sub",
		"FILES=" + files,
		"PWD=" + filepath.Join(s.dataDir, "accessories", "hello", "acc"),
		"ARG0=" + files + "/bin/acc.sh",
	}, "\n") + "\n"
	if string(b) != want {
		t.Fatalf("the accessory saw:\n%s\nwant:\n%s", b, want)
	}
	// The copy is the upload's, not the release directory itself.
	if _, err := os.Stat(filepath.Join(files, "moorage.yaml")); err != nil {
		t.Fatalf("the accessory's files lack the upload's moorage.yaml: %v", err)
	}

	for name, want := range map[string]string{
		"DATA_FILE": s.volumePath("hello", "data") + "/x",
		"LITERAL":   "pa$word",
		"WHO":       "hello-web",
		"DB":        "127.0.0.1:" + port,
		"CFG":       "a$HOME",
		"SEC":       "s$PORT$$",
	} {
		waitFor(t, 10*time.Second, "GET /env/"+name, func() error {
			code, body, err := s.get("/env/" + name)
			if err == nil && (code != 200 || body != want) {
				err = fmt.Errorf("%d %q, want %q", code, body, want)
			}
			return err
		})
	}
}
