package view

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
)

// JSON answers code with v, indented.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Error answers code with {"error": the formatted sentence}.
func Error(w http.ResponseWriter, code int, format string, args ...any) {
	JSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// appName is what an app's name may be.
var appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidApp reports whether name may be an app's name.
func ValidApp(name string) bool { return appName.MatchString(name) }

// QueryInt reads an optional positive integer parameter, bounded.
func QueryInt(r *http.Request, name string, def, maxValue int64) (int64, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > maxValue {
		return 0, fmt.Errorf("query parameter %s=%q must be a number from 0 to %d", name, raw, maxValue)
	}
	return n, nil
}
