package protoany

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// TestMarshalIsDeterministic: a message with a map packs to the same bytes every time.
func TestMarshalIsDeterministic(t *testing.T) {
	fields := map[string]any{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		fields[k] = k
	}
	s, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	first, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := Marshal(s)
		if !bytes.Equal(first.GetValue(), again.GetValue()) || first.GetTypeUrl() != again.GetTypeUrl() {
			t.Fatal("two packings of one message differ")
		}
	}
}

// TestMustKeepsTheFirstError: Must returns a usable Any and records only the first error.
func TestMustKeepsTheFirstError(t *testing.T) {
	var err error
	bad := &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: "\xff"}} // invalid UTF-8
	if a := Must(&err, bad); a == nil || err == nil {
		t.Fatalf("Must(invalid) = %v, err %v; want an empty Any and an error", a, err)
	}
	first := err
	Must(&err, &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: "\xfe"}})
	if !errors.Is(err, first) && err != first {
		t.Fatalf("second error replaced the first: %v", err)
	}
	if a := Must(&err, structpb.NewStringValue("ok")); len(a.GetValue()) == 0 {
		t.Fatal("a valid message after an error must still pack")
	}
}
