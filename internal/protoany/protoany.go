// Package protoany packs protobuf messages into Any the one way Warden does it: with
// deterministic map ordering, so that the same configuration always gives the same
// bytes and so the same content hash (anypb.New does not guarantee that). translate,
// translate/authz and xds (the bootstrap) all pack through it.
package protoany

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Marshal packs msg into an Any with deterministic map ordering.
func Marshal(msg proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, msg, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// Must is Marshal for builders: the first error is kept in *errp and later calls still
// return a non-nil (empty) Any, so construction can finish and be reported once.
func Must(errp *error, msg proto.Message) *anypb.Any {
	a, err := Marshal(msg)
	if err != nil {
		if *errp == nil {
			*errp = err
		}
		return &anypb.Any{}
	}
	return a
}
