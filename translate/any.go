package translate

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenmesh/warden/translate/internal/shared"
)

// marshalAny packs msg into an Any with deterministic map ordering (shared.MarshalAny).
func marshalAny(msg proto.Message) (*anypb.Any, error) { return shared.MarshalAny(msg) }

// mustAny is shared.MustAny: the first error is kept in *errp.
func mustAny(errp *error, msg proto.Message) *anypb.Any { return shared.MustAny(errp, msg) }
