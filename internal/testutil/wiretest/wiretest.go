// Package wiretest holds what the tests of the wire types share: that a
// server-side type and its wire form (internal/api) encode alike.
package wiretest

import (
	"encoding/json"
	"reflect"
	"testing"
)

// SameJSON fails unless the server's value, which sets every field, and
// its wire form encode to the same JSON.
func SameJSON(t testing.TB, server, wire any) {
	t.Helper()
	v := reflect.ValueOf(server)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("%s.%s is not set: set every field, so that the test compares it", v.Type(), v.Type().Field(i).Name)
		}
	}
	a, err := json.Marshal(server)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("%T's JSON changed:\n was %s\n now %s", wire, a, b)
	}
}
