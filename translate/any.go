package translate

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// marshalAny packs msg into an Any with deterministic map ordering, so that the same
// config always gives the same bytes (anypb.New does not guarantee that).
func marshalAny(msg proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, msg, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// mustAny is marshalAny for builders: the first error is kept in *errp and later calls
// still return a non-nil (empty) Any so construction can finish and be reported once.
func mustAny(errp *error, msg proto.Message) *anypb.Any {
	a, err := marshalAny(msg)
	if err != nil {
		if *errp == nil {
			*errp = err
		}
		return &anypb.Any{}
	}
	return a
}
