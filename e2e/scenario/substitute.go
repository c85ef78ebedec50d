package scenario

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
)

// fileRef matches `${file:PATH}`.
var fileRef = regexp.MustCompile(`\$\{file:([^}]+)\}`)

// substituter replaces `${file:PATH}` in string values, PATH relative to dir. Replaced
// text is not scanned again.
type substituter struct {
	dir   string
	p     *problems
	cache map[string]string
}

// walk substitutes in every string reachable from v (struct fields decoded from the
// scenario, list items and map values; never map keys). path is v's YAML path.
func (s *substituter) walk(path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			s.walk(path, v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if name := jsonName(v.Type().Field(i)); name != "" {
				s.walk(child(path, name), v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			s.walk(index(path, i), v.Index(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		for _, key := range sortedValues(keys) {
			elem := reflect.New(v.Type().Elem()).Elem()
			elem.Set(v.MapIndex(key))
			s.walk(child(path, key.String()), elem)
			v.SetMapIndex(key, elem)
		}
	case reflect.String:
		v.SetString(s.expand(path, v.String()))
	}
}

func (s *substituter) expand(path, text string) string {
	text = s.expandPaths(path, text) // substitute_path.go
	if !strings.Contains(text, "${file:") {
		return text
	}
	return fileRef.ReplaceAllStringFunc(text, func(ref string) string {
		rel := fileRef.FindStringSubmatch(ref)[1]
		content, ok := s.read(path, rel)
		if !ok {
			return ref
		}
		return content
	})
}

// read returns the trimmed content of rel, reporting a problem at path when it cannot.
func (s *substituter) read(path, rel string) (string, bool) {
	file := rel
	if !filepath.IsAbs(file) {
		file = filepath.Join(s.dir, file)
	}
	if content, ok := s.cache[file]; ok {
		return content, true
	}
	data, err := os.ReadFile(file)
	if err != nil {
		s.p.add(path, "${file:"+rel+"}: "+err.Error())
		return "", false
	}
	content := strings.TrimSpace(string(data))
	s.cache[file] = content
	return content, true
}

// sortedValues orders string map keys so that problems are reported deterministically.
func sortedValues(keys []reflect.Value) []reflect.Value {
	byName := make(map[string]reflect.Value, len(keys))
	for _, k := range keys {
		byName[k.String()] = k
	}
	out := make([]reflect.Value, 0, len(keys))
	for _, name := range sortedKeys(byName) {
		out = append(out, byName[name])
	}
	return out
}
