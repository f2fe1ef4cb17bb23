package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// errUnresolved marks a ${VAR} placeholder whose variable is not set and that
// has no default.
var errUnresolved = errors.New("is not set and the placeholder has no default")

// expandPlaceholders resolves the BDK's placeholders in a string value of the
// file: ${NAME} and ${NAME:-default} from the environment, plus the Java
// system properties BDK files commonly use (${user.home}, ${user.dir},
// ${user.name}). "$${" escapes a literal "${", as Apache StringSubstitutor
// (which the BDK uses) does. The BDK leaves an unresolved placeholder as it
// is; symbridge does the same but reports it, so that a key it uses never
// silently holds "${BOT_USER}". Nested placeholders are not supported.
func expandPlaceholders(s string, env map[string]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var firstErr error
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' { // "$${" -> literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		inner := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(inner, ":-")
		if v, ok := lookupPlaceholder(name, env); ok {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else {
			b.WriteString(s[i : i+3+end])
			if firstErr == nil {
				firstErr = fmt.Errorf("placeholder ${%s}: variable %s %w", name, name, errUnresolved)
			}
		}
		s = s[i+3+end:]
	}
	return b.String(), firstErr
}

func lookupPlaceholder(name string, env map[string]string) (string, bool) {
	if v, ok := env[name]; ok {
		return v, true
	}
	switch name {
	case "user.home":
		v, ok := env["HOME"]
		if !ok {
			v, ok = env["USERPROFILE"]
		}
		return v, ok
	case "user.name":
		v, ok := env["USER"]
		if !ok {
			v, ok = env["USERNAME"]
		}
		return v, ok
	case "user.dir":
		wd, err := os.Getwd()
		return wd, err == nil
	}
	return "", false
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

// expandValue resolves the placeholders of a string, or of the strings of a
// list.
func expandValue(v any, envVars map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		return expandPlaceholders(x, envVars)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = it
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
// field mapstructure fills; the error says what the key must be, echoing the
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

// convert reads every scalar through its text, so that a number in the
// file, a string in the environment and a Go value from a flag are parsed
// alike. It returns what v should have been when it cannot convert it.
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
	case t == millisType:
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case !scalar || err != nil:
			return nil, "an integer"
		case n < 0 || n > math.MaxInt64/int64(time.Millisecond):
			return nil, "a non-negative number of milliseconds"
		}
		return time.Duration(n) * time.Millisecond, ""
	case k == reflect.String:
		if scalar { // untrimmed: inline PEM keeps its final newline
			return fmt.Sprint(v), "" // YAML turns `username: 1234` into a number, still meant as text
		}
		return nil, "a string"
	case k == reflect.Bool:
		_, isBool := v.(bool)
		_, isString := v.(string)
		if b, err := strconv.ParseBool(s); err == nil && (isBool || isString) {
			return b, ""
		}
		return nil, "true or false"
	case k == reflect.Int, k == reflect.Int32, k == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case !scalar || err != nil:
			return nil, "an integer"
		case k != reflect.Int64 && (n < math.MinInt32 || n > math.MaxInt32):
			return nil, "an integer in 32-bit range"
		}
		return n, ""
	case k == reflect.Float64:
		if f, err := strconv.ParseFloat(s, 64); scalar && err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, ""
		}
		return nil, "a number"
	}
	return toList(v) // the one slice type: []string
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

// toList accepts a YAML list of scalars or a comma-separated string (the
// environment's spelling); blanks are dropped.
func toList(v any) ([]string, string) {
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
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
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out, ""
}
