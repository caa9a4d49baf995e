package release

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The stored form of the evidence: records stored before it had a type
// (the canary marshalled an untyped map) read as the typed evidence, with
// every number, and what the store writes now reads back equal.
func TestStoredEvidenceReadsAsTyped(t *testing.T) {
	t.Parallel()
	stored := []byte(`{"detail":{"measurements":[{"Metric":"success-rate","Query":"q","Value":71.2,"Min":99,"Max":null,"Requests":40,` +
		`"Outcome":"fail","Message":"71.2 < min 99","At":"2026-11-27T10:01:04Z"}],"failureLimit":1,"consecutiveErrorLimit":3},` +
		`"timings":{"decidedAt":"2026-11-27T10:01:04.01Z","detectedAt":"2026-11-27T10:01:04Z","pushedAt":"2026-11-27T10:01:04.4Z","restoredAt":"2026-11-27T10:01:08.1Z"}}`)
	var v struct{ Evidence RollbackEvidence }
	if err := json.Unmarshal(stored, &v.Evidence); err != nil {
		t.Fatal(err)
	}
	ms := v.Evidence.Detail.Measurements
	if len(ms) != 1 || ms[0].Value != 71.2 || ms[0].Min == nil || *ms[0].Min != 99 || ms[0].Requests != 40 || v.Evidence.Detail.FailureLimit != 1 ||
		v.Evidence.Timings.RestoredAt.Sub(v.Evidence.Timings.PushedAt) != 3700*time.Millisecond {
		t.Errorf("stored evidence read as %+v", v.Evidence)
	}
	var alert struct{ Evidence RollbackEvidence }
	if err := json.Unmarshal([]byte(`{"detail":{"status":"firing","labels":{"alertname":"HighErrorRate"},`+
		`"annotations":{"summary":"5xx"},"startsAt":"2026-11-27T10:00:00Z","fingerprint":"f"},"timings":{}}`), &alert.Evidence); err != nil {
		t.Fatal(err)
	}
	if alert.Evidence.Detail.Labels["alertname"] != "HighErrorRate" || alert.Evidence.Detail.StartsAt.IsZero() {
		t.Errorf("stored alert evidence read as %+v", alert.Evidence)
	}
	// What the runner stores now (json.Marshal of the type) reads back equal.
	want := RollbackEvidence{Detail: RollbackDetail{Measurements: ms, FailureLimit: 1}, Timings: v.Evidence.Timings}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got RollbackEvidence
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
