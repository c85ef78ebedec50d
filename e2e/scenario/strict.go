package scenario

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// checkShape walks a generic JSON value (decoded with UseNumber) against the Go type
// it will be decoded into and reports, with their YAML paths, every unknown field and
// every value of the wrong type. A null value is accepted anywhere: it means absent.
func checkShape(p *problems, path string, v any, t reflect.Type) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			p.add(path, "want a mapping, got "+describe(v))
			return
		}
		fields := jsonFields(t)
		for _, key := range sortedKeys(obj) {
			f, ok := fields[key]
			if !ok {
				p.add(child(path, key), "unknown field"+suggest(key, fields))
				continue
			}
			checkShape(p, child(path, key), obj[key], f.Type)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			p.add(path, "want a mapping, got "+describe(v))
			return
		}
		for _, key := range sortedKeys(obj) {
			checkShape(p, child(path, key), obj[key], t.Elem())
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			p.add(path, "want a list, got "+describe(v))
			return
		}
		for i, item := range list {
			checkShape(p, index(path, i), item, t.Elem())
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			p.add(path, "want a string, got "+describe(v)+" (quote the value)")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			p.add(path, "want true or false, got "+describe(v))
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			p.add(path, "want an integer, got "+describe(v))
			return
		}
		if _, err := n.Int64(); err != nil {
			p.add(path, "want an integer, got "+n.String())
		}
	default:
		panic(fmt.Sprintf("scenario: checkShape: unsupported type %s", t))
	}
}

// jsonFields maps the JSON names of the decodable fields of struct type t to them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name := jsonName(f); name != "" {
			fields[name] = f
		}
	}
	return fields
}

// jsonName is the JSON name of a struct field, or "" when it is not decoded.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

func describe(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return fmt.Sprintf("%t", x)
	case json.Number:
		return "number " + x.String()
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest names the known field closest to an unknown one, when it is close enough
// to be a typo or a case mistake.
func suggest(key string, fields map[string]reflect.StructField) string {
	limit := 1
	if len(key) > 5 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, name := range sortedKeys(fields) {
		d := distance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Damerau-Levenshtein (optimal string alignment) edit distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
