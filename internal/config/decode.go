package config

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// placeholder matches the BDK's ${NAME} and ${NAME:-default}, and "$${",
// which escapes a literal "${" as in Apache StringSubstitutor (which the BDK
// uses). Nested placeholders are not supported.
var placeholder = regexp.MustCompile(`\$?\$\{([^}]*)\}`)

// javaProperties are the Java system properties BDK files commonly use, and
// the variables that hold them here; ${user.dir} is the working directory.
var javaProperties = map[string][]string{"user.home": {"HOME", "USERPROFILE"}, "user.name": {"USER", "USERNAME"}}

// expandPlaceholders resolves the placeholders of a string value of the file
// from the environment. The BDK leaves an unresolved placeholder as it is;
// symbridge does the same but reports it, so that a key it uses never
// silently holds "${BOT_USER}".
func expandPlaceholders(s string, env map[string]string) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		if m[1] == '$' {
			return m[1:]
		}
		name, def, hasDef := strings.Cut(m[2:len(m)-1], ":-")
		for _, n := range append([]string{name}, javaProperties[name]...) {
			if v, ok := env[n]; ok {
				return v
			}
		}
		if wd, e := os.Getwd(); name == "user.dir" && e == nil {
			return wd
		}
		if hasDef {
			return def
		}
		if err == nil {
			err = fmt.Errorf("placeholder ${%s}: variable %s is not set and the placeholder has no default", name, name)
		}
		return m
	})
	return out, err
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// expandValue resolves the placeholders of a string, or of a list's strings.
func expandValue(v any, envVars map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		return expandPlaceholders(x, envVars)
	case []any:
		out := slices.Clone(x)
		for i, it := range x {
			if s, ok := it.(string); ok {
				var err error
				if out[i], err = expandPlaceholders(s, envVars); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	return v, nil
}

// decodeHook converts a raw value (typed YAML, a string from the
// environment or a flag, or a Go value from an override) to the type of the
// field mapstructure fills. Every scalar is read through its text, so that
// the three layers accept the same spellings. mapstructure's own weak
// conversions are not used: they take 1 for true, truncate 1.5 to an int
// and read "010" as octal. The error says what the key must be, echoing the
// value unless the field is a secret.
func decodeHook(from, to reflect.Value) (any, error) {
	if to.Kind() == reflect.Struct {
		return from.Interface(), nil // a section: mapstructure walks it
	}
	v, want := convert(to.Type(), from.Interface())
	switch {
	case want == "":
		return v, nil
	case to.Type() == secretType:
		return nil, fmt.Errorf("must be %s", want)
	}
	return nil, fmt.Errorf("must be %s, got %q", want, fmt.Sprint(from.Interface()))
}

// convert returns v as type t, or what v should have been.
func convert(t reflect.Type, v any) (out any, want string) {
	s, scalar := text(v)
	switch k := t.Kind(); {
	case t == durationType:
		if d, ok := v.(time.Duration); ok {
			return d, ""
		}
		_, isFloat := v.(float64)
		if d, err := time.ParseDuration(s); scalar && !isFloat && err == nil { // of numbers, 0 alone parses
			return d, ""
		}
		return nil, `a duration with a unit, like "5s" or "35m"`
	case k == reflect.String && scalar:
		return fmt.Sprint(v), "" // untrimmed (inline PEM keeps its final newline); YAML's numbers as text
	case k == reflect.String:
		return nil, "a string"
	case k == reflect.Bool:
		switch v.(type) {
		case bool, string: // not 1 for true
			if b, err := strconv.ParseBool(s); err == nil {
				return b, ""
			}
		}
		return nil, "true or false"
	case k == reflect.Int, k == reflect.Int32, k == reflect.Int64: // millis too
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case !scalar || err != nil:
			return nil, "an integer"
		case k != reflect.Int64 && (n < math.MinInt32 || n > math.MaxInt32):
			return nil, "an integer in 32-bit range"
		case t == millisType && (n < 0 || n > math.MaxInt64/int64(time.Millisecond)):
			return nil, "a non-negative number of milliseconds"
		case t == millisType:
			return time.Duration(n) * time.Millisecond, ""
		}
		return n, ""
	case k == reflect.Float64:
		if f, err := strconv.ParseFloat(s, 64); scalar && err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, ""
		}
		return nil, "a number"
	}
	var items []string // a list: the one slice type is []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",") // the environment's spelling
	case []string:
		items = x
	case []any:
		for _, it := range x {
			s, ok := text(it)
			if !ok {
				return nil, "a list of strings"
			}
			items = append(items, s)
		}
	default:
		return nil, "a list of strings or a comma-separated string"
	}
	list := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			list = append(list, it)
		}
	}
	return list, ""
}

// text is a scalar's text: a string trimmed, a number in decimal.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool, int, int64, uint64:
		return fmt.Sprint(x), true
	}
	return "", false
}
