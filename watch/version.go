package watch

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"

	"google.golang.org/protobuf/proto"
)

// version hashes the accepted objects (sorted by kind, namespace, name) into a short
// hex string. Sources are left out: moving an object to another file changes nothing.
func version(objs []Object) string {
	h := sha256.New()
	for _, o := range objs {
		for _, s := range []string{o.Kind, o.APIVersion, o.Namespace, o.Name, o.CreationTimestamp.UTC().String()} {
			writeField(h, []byte(s))
		}
		writeMap(h, o.Labels)
		writeMap(h, o.Annotations)
		writeField(h, specBytes(o.Spec))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func specBytes(spec any) []byte {
	var (
		b   []byte
		err error
	)
	if m, ok := spec.(proto.Message); ok {
		b, err = proto.MarshalOptions{Deterministic: true}.Marshal(m)
	} else {
		b, err = json.Marshal(spec) // encoding/json sorts map keys
	}
	if err != nil {
		return []byte("unmarshalable: " + err.Error())
	}
	return b
}

func writeMap(h hash.Hash, m map[string]string) {
	writeField(h, binary.BigEndian.AppendUint64(nil, uint64(len(m))))
	for _, k := range sortedKeys(m) {
		writeField(h, []byte(k))
		writeField(h, []byte(m[k]))
	}
}

// writeField writes one length-prefixed field, so that field boundaries are unambiguous.
func writeField(h hash.Hash, b []byte) {
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}
