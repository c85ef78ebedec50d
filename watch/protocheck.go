package watch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fieldError is one problem at one field path, e.g. {"spec.mtls.mode", "invalid value ..."}.
type fieldError struct {
	Field   string
	Message string
}

// decodeProtoStrict decodes JSON into msg the way protojson does with unknown fields
// disallowed, first walking the JSON against the message descriptor so that an error
// names the field path (protojson reports only a byte offset). path is the prefix of
// reported fields, e.g. "spec".
func decodeProtoStrict(path string, data []byte, msg proto.Message) *fieldError {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return &fieldError{path, "invalid JSON: " + err.Error()}
	}
	if fe := checkMessage(msg.ProtoReflect().Descriptor(), tree, path); fe != nil {
		return fe
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, msg); err != nil {
		return &fieldError{path, cleanProtoError(err)}
	}
	return nil
}

var (
	// protojson separates words with a space or, at random, a non-breaking space.
	protoErrorPrefix   = regexp.MustCompile(`^proto:[\s\x{00a0}]*`)
	protoErrorPosition = regexp.MustCompile(`\s*\(line \d+:\d+\):?`)
)

// cleanProtoError drops protojson's "proto: " prefix and "(line 1:17)" positions, which
// refer to the converted JSON, not to the YAML file the reader has.
func cleanProtoError(err error) string {
	msg := protoErrorPrefix.ReplaceAllString(err.Error(), "")
	msg = protoErrorPosition.ReplaceAllString(msg, "")
	return strings.Join(strings.FieldsFunc(msg, func(r rune) bool { return r == ' ' || r == '\u00a0' }), " ")
}

// checkMessage reports the first field of v that is unknown to md or of the wrong
// JSON type, or an enum value that is not a valid name.
func checkMessage(md protoreflect.MessageDescriptor, v any, path string) *fieldError {
	if isWellKnown(md) {
		return checkWellKnown(md, v, path)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return invalid(path, v, "object")
	}
	fields := md.Fields()
	for _, key := range sortedKeys(obj) {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return &fieldError{join(path, key), "unknown field"}
		}
		val := obj[key]
		if val == nil {
			continue // null means unset
		}
		if fe := checkField(fd, val, join(path, key)); fe != nil {
			return fe
		}
	}
	return nil
}

func checkField(fd protoreflect.FieldDescriptor, v any, path string) *fieldError {
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return invalid(path, v, "object")
		}
		for _, k := range sortedKeys(obj) {
			p := path + "[" + k + "]"
			if fe := checkMapKey(fd.MapKey(), k, p); fe != nil {
				return fe
			}
			if obj[k] == nil {
				return invalid(p, nil, typeName(fd.MapValue()))
			}
			if fe := checkSingular(fd.MapValue(), obj[k], p); fe != nil {
				return fe
			}
		}
		return nil
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return invalid(path, v, "list")
		}
		for i, e := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			if e == nil {
				return invalid(p, nil, typeName(fd))
			}
			if fe := checkSingular(fd, e, p); fe != nil {
				return fe
			}
		}
		return nil
	}
	return checkSingular(fd, v, path)
}

func checkSingular(fd protoreflect.FieldDescriptor, v any, path string) *fieldError {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessage(fd.Message(), v, path)
	case protoreflect.EnumKind:
		return checkEnum(fd.Enum(), v, path)
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return invalid(path, v, "boolean")
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			return invalid(path, v, "string")
		}
	default: // numbers; protojson also accepts them quoted
		switch v.(type) {
		case json.Number, string:
		default:
			return invalid(path, v, "number")
		}
	}
	return nil
}

func checkEnum(ed protoreflect.EnumDescriptor, v any, path string) *fieldError {
	if ed.FullName() == "google.protobuf.NullValue" {
		return nil
	}
	switch val := v.(type) {
	case json.Number:
		return nil // protojson accepts numeric enum values
	case string:
		if ed.Values().ByName(protoreflect.Name(val)) != nil {
			return nil
		}
	}
	values := ed.Values()
	names := make([]string, values.Len())
	for i := range values.Len() {
		names[i] = string(values.Get(i).Name())
	}
	return &fieldError{path, fmt.Sprintf("invalid value %s (want %s)", show(v), strings.Join(names, ", "))}
}

func checkMapKey(kd protoreflect.FieldDescriptor, key, path string) *fieldError {
	if kd.Kind() == protoreflect.StringKind {
		return nil
	}
	if kd.Kind() == protoreflect.BoolKind {
		if key == "true" || key == "false" {
			return nil
		}
		return &fieldError{path, fmt.Sprintf("invalid key %q (want true or false)", key)}
	}
	if _, err := strconv.ParseInt(key, 10, 64); err != nil {
		return &fieldError{path, fmt.Sprintf("invalid key %q (want an integer)", key)}
	}
	return nil
}

func isWellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

// checkWellKnown checks the JSON type of the well-known types protojson encodes
// specially (a Duration is a string such as "1.5s", a BoolValue a bare boolean...).
// The value itself is left to protojson.
func checkWellKnown(md protoreflect.MessageDescriptor, v any, path string) *fieldError {
	var want string
	switch md.FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
		"google.protobuf.StringValue", "google.protobuf.BytesValue":
		if _, ok := v.(string); !ok {
			want = "string"
		}
	case "google.protobuf.BoolValue":
		if _, ok := v.(bool); !ok {
			want = "boolean"
		}
	case "google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
		"google.protobuf.UInt64Value", "google.protobuf.FloatValue", "google.protobuf.DoubleValue":
		switch v.(type) {
		case json.Number, string:
		default:
			want = "number"
		}
	case "google.protobuf.Struct", "google.protobuf.Any", "google.protobuf.Empty":
		if _, ok := v.(map[string]any); !ok {
			want = "object"
		}
	case "google.protobuf.ListValue":
		if _, ok := v.([]any); !ok {
			want = "list"
		}
	}
	if want != "" {
		return invalid(path, v, want)
	}
	return nil
}

func typeName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "object"
	case protoreflect.BoolKind:
		return "boolean"
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind:
		return "string"
	}
	return "number"
}

func invalid(path string, v any, want string) *fieldError {
	return &fieldError{path, fmt.Sprintf("invalid value %s (want %s)", show(v), want)}
}

// show renders a JSON value for a message, shortened.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const limit = 60
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// CleanProtoError is cleanProtoError for decoders outside this package (a pod
// annotation translate reads): stable text, without protojson's positions.
func CleanProtoError(err error) string { return cleanProtoError(err) }
