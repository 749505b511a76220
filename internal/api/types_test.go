package api

import "testing"

func TestCommitShort(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		c    *Commit
		want string
	}{
		{nil, ""},
		{&Commit{SHA: sha, Describe: "v1.2-3-g0123456-dirty"}, "v1.2-3-g0123456-dirty"},
		{&Commit{SHA: sha}, "0123456789ab"},
		{&Commit{SHA: "0123"}, "0123"},
	} {
		if got := tc.c.Short(); got != tc.want {
			t.Errorf("%+v.Short() = %q, want %q", tc.c, got, tc.want)
		}
	}
}
