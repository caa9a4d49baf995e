package view

import (
	"encoding/json"
	"fmt"
	"net/http"
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
