package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n", nil},
		{"a", []string{"a"}},
		{"  gunicorn  app.wsgi -b 0.0.0.0:$PORT ", []string{"gunicorn", "app.wsgi", "-b", "0.0.0.0:$PORT"}},
		{"a\tb\nc\r\nd", []string{"a", "b", "c", "d"}},
		{`sh -c 'echo "hi" && exit 1'`, []string{"sh", "-c", `echo "hi" && exit 1`}},
		{`echo 'it'"'"'s'`, []string{"echo", "it's"}},
		{`echo "a \"b\" c\\d \e $X"`, []string{"echo", `a "b" c\d \e $X`}},
		{`echo ''`, []string{"echo", ""}},
		{`echo "" ''`, []string{"echo", "", ""}},
		{`a"b c"d`, []string{"ab cd"}},
		{`a\ b c\\d \'x\"`, []string{"a b", `c\d`, `'x"`}},
		{"a \\\nb", []string{"a", "b"}},
		{"a\\\nb", []string{"ab"}},
		{`'$HOME' "$HOME" \$HOME`, []string{"$HOME", "$HOME", "$HOME"}},
		{`*.py ~`, []string{"*.py", "~"}},
		{"héllo wörld 日本", []string{"héllo", "wörld", "日本"}},
		{`"multi
line"`, []string{"multi\nline"}},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, err string }{
		{`echo 'abc`, "unterminated single quote (opened at character 6)"},
		{`echo "abc`, "unterminated double quote (opened at character 6)"},
		{`é "`, "unterminated double quote (opened at character 3)"},
		{`echo "a\"`, "unterminated double quote"},
		{`echo \`, "ends with a backslash"},
	} {
		if _, err := SplitCommand(tt.in); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("SplitCommand(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
}

func TestSplitCommandShellOperators(t *testing.T) {
	for in, op := range map[string]string{
		"a && b":         "&&",
		"a || b":         "||",
		"a | b":          "|",
		"a; b":           ";",
		"a > out":        ">",
		"a 2>&1":         ">&",
		"a < in":         "<",
		"a &":            "&",
		"echo `date`":    "`",
		"echo $(date)":   "$(",
		"a '&&' b":       "",
		`a "|" b`:        "",
		`a \; b`:         "",
		"x=$X ${Y}":      "",
		"curl 'a?b&c'":   "",
		"echo '$(date)'": "",
	} {
		_, got, err := splitCommand(in)
		if err != nil || got != op {
			t.Errorf("splitCommand(%q) op = %q, %v; want %q", in, got, err, op)
		}
	}
}

func TestCommandString(t *testing.T) {
	for _, c := range []Command{
		{"gunicorn", "app.wsgi", "-b", "0.0.0.0:$PORT"},
		{"sh", "-c", "echo 'hi' && exit 1"},
		{"echo", "", "a b", `"q"`, `back\slash`, "new\nline", "日本"},
	} {
		s := c.String()
		back, err := SplitCommand(s)
		if err != nil || !reflect.DeepEqual(Command(back), c) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", s, back, err, c)
		}
	}
	if got := (Command{"a", "b c", ""}).String(); got != `a 'b c' ''` {
		t.Errorf("String = %s", got)
	}
}
