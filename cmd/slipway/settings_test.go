package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
)

// The engine config holds every setting of the stages' tools and
// cluster; a container's environment variables replace the ones they name.
func TestSettingsComeFromTheEngineConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slipway.yaml")
	config := `apiVersion: slipway.dev/v1
kind: EngineConfig
prometheus: http://prometheus:9090
trivy: {server: "http://trivy:4954", token: {file: trivy.token}, cache: cache/trivy}
kubernetes:
  kubeconfig: kube/config
  namespace: builds
  helperImage: registry.example/slipway:1
  kanikoImage: registry.example/kaniko:1
  serviceAccount: stage
  serviceAccounts: [deployer]
  pullSecret: pull
  fence: api-server
`
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trivy.token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := engineconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	got, err := configSettings(cfg, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := settings{
		prometheus: "http://prometheus:9090", trivyServer: "http://trivy:4954", trivyToken: "s3cret",
		trivyCache: filepath.Join(dir, "cache/trivy"), kubeconfig: filepath.Join(dir, "kube/config"),
		namespace: "builds", helperImage: "registry.example/slipway:1", kanikoImage: "registry.example/kaniko:1",
		serviceAccount: "stage", serviceAccounts: []string{"deployer"}, pullSecret: "pull", fence: "api-server",
		registries: []string{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings\n%+v, want\n%+v", got, want)
	}

	env := map[string]string{"SLIPWAY_POD_NAMESPACE": "other", "SLIPWAY_POD_SERVICE_ACCOUNTS": " a, ,b ", "SLIPWAY_TRIVY_SERVER": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got, err = configSettings(cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got.namespace != "other" || !reflect.DeepEqual(got.serviceAccounts, []string{"a", "b"}) || got.trivyServer != "" || got.prometheus != want.prometheus {
		t.Errorf("the environment's overrides: %+v", got)
	}

	env = map[string]string{"SLIPWAY_TRIVY_OFFLINE": "yes please"}
	if _, err := configSettings(cfg, lookup); err == nil || !strings.Contains(err.Error(), "SLIPWAY_TRIVY_OFFLINE") {
		t.Errorf("a bad override: %v", err)
	}
}

// Each override names a setting the engine config has.
func TestEveryOverrideNamesAConfigField(t *testing.T) {
	data, err := os.ReadFile("../../docs/schema/engine-config.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envSettings {
		leaf := e.field[strings.LastIndex(e.field, ".")+1:]
		if !strings.Contains(string(data), `"`+leaf+`": {`) {
			t.Errorf("%s overrides %s, which the engine config's schema lacks", e.name, e.field)
		}
	}
}
