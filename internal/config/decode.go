package config

import (
	"errors"
	"fmt"
	"math"
	"os"
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

// typeError reports a value of the wrong type, echoing it unless the key is
// secret.
func typeError(d *keyDef, v any, want string) error {
	if d.secret {
		return fmt.Errorf("%s: must be %s", d.key, want)
	}
	return fmt.Errorf("%s: must be %s, got %q", d.key, want, fmt.Sprint(v))
}

// decodeValue converts a raw value (typed YAML, a string from the
// environment or a flag, or a Go value from an override) to the Go type of the
// key's kind. Empty strings mean "unset" for every kind but strings.
func decodeValue(d *keyDef, v any) (any, error) {
	switch d.kind {
	case kString:
		switch x := v.(type) {
		case string:
			return x, nil
		case int, int64, float64, bool:
			// YAML turns `port: 8443`-like values into numbers; a string key
			// given a scalar is still meant as text (e.g. a numeric username).
			return fmt.Sprint(x), nil
		}
		return nil, typeError(d, v, "a string")
	case kBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, typeError(d, v, "true or false")
			}
			return b, nil
		}
		return nil, typeError(d, v, "true or false")
	case kInt, kInt64, kMillis:
		n, err := toInt64(v)
		if err != nil {
			return nil, typeError(d, v, "an integer")
		}
		switch d.kind {
		case kMillis:
			if n < 0 || n > math.MaxInt64/int64(time.Millisecond) {
				return nil, typeError(d, v, "a non-negative number of milliseconds")
			}
			return time.Duration(n) * time.Millisecond, nil
		case kInt:
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, typeError(d, v, "an integer in 32-bit range")
			}
			return int(n), nil
		}
		return n, nil
	case kFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, typeError(d, v, "a number")
			}
			return f, nil
		}
		return nil, typeError(d, v, "a number")
	case kDuration:
		switch x := v.(type) {
		case time.Duration:
			return x, nil
		case string:
			dur, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				return nil, typeError(d, v, `a duration with a unit, like "5s" or "35m"`)
			}
			return dur, nil
		case int:
			if x == 0 {
				return time.Duration(0), nil
			}
		case int64:
			if x == 0 {
				return time.Duration(0), nil
			}
		}
		return nil, typeError(d, v, `a duration with a unit, like "5s" or "35m"`)
	case kList:
		return toList(d, v)
	}
	return nil, fmt.Errorf("%s: unsupported kind", d.key)
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, errors.New("out of range")
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, errors.New("not an integer")
		}
		return int64(x), nil
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, errors.New("not an integer")
}

// toList accepts a YAML list of scalars or a comma-separated string (the
// environment's spelling); blanks are dropped.
func toList(d *keyDef, v any) ([]string, error) {
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []string:
		items = x
	case []any:
		for _, it := range x {
			switch s := it.(type) {
			case string:
				items = append(items, s)
			case int, int64, float64, bool:
				items = append(items, fmt.Sprint(s))
			default:
				return nil, typeError(d, v, "a list of strings")
			}
		}
	default:
		return nil, typeError(d, v, "a list of strings or a comma-separated string")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out, nil
}

// isUnset tells whether a raw value means "not configured": absent, YAML
// null, an empty map, or (for every kind but strings) an empty string.
func isUnset(d *keyDef, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case string:
		return d.kind != kString && strings.TrimSpace(x) == ""
	}
	return false
}
