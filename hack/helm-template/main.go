// Command helm-template renders a Helm chart the way `helm template` does, for
// the tests of charts/gpu-autoscaler on machines without helm (Debian ships
// none). It builds offline from Debian's Go packages in GOPATH mode:
// text/template, github.com/Masterminds/sprig (helm's own function library)
// and gopkg.in/yaml.v3. See hack/helm-template.sh.
//
// What it supports is what the chart uses: values.yaml merged with -f files
// and --set/--set-string overrides, values.schema.json validation,
// .Release/.Chart/.Values/.Capabilities/.Template/.Files, helm's extra
// functions (include, tpl, required, toYaml, fromYaml, toJson, fromJson,
// lookup, which finds nothing as in `helm template`), NOTES.txt skipped and the
// chart's crds/ emitted first with --include-crds.
//
//	helm-template --namespace gpu-autoscaler-system --include-crds \
//	  --api-versions cert-manager.io/v1 --set scheduler.mode=extender \
//	  gpu-autoscaler charts/gpu-autoscaler
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const usage = `helm-template: render a Helm chart like 'helm template' (offline, no helm needed)

Usage: helm-template [flags] RELEASE_NAME CHART_DIR

Flags:
  -n, --namespace NS         .Release.Namespace (default "default")
  -f, --values FILE          a values file merged over the chart's values.yaml (repeatable)
  --set K=V[,K=V]            override values; V is typed (true, 3, null); K.x[0]=V paths (repeatable)
  --set-string K=V[,K=V]     same, V always a string (repeatable)
  -a, --api-versions G/V     a group/version (or G/V/Kind) .Capabilities.APIVersions has (repeatable)
  --kube-version V           .Capabilities.KubeVersion (default v1.29.0)
  --no-default-api-versions  .Capabilities.APIVersions is only what --api-versions lists,
                             as a cluster's discovery gives it to helm install (default:
                             helm template's built-in set of a current server)
  --include-crds             emit the chart's crds/*.yaml first
  --skip-schema-validation   do not check the values against values.schema.json
  -h, --help                 this text
`

func main() {
	fs := flag.NewFlagSet("helm-template", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	var valueFiles, sets, setStrings, apiVersions multiFlag
	namespace := fs.String("namespace", "default", "")
	fs.StringVar(namespace, "n", "default", "")
	fs.Var(&valueFiles, "values", "")
	fs.Var(&valueFiles, "f", "")
	fs.Var(&sets, "set", "")
	fs.Var(&setStrings, "set-string", "")
	fs.Var(&apiVersions, "api-versions", "")
	fs.Var(&apiVersions, "a", "")
	kubeVersion := fs.String("kube-version", "v1.29.0", "")
	noDefaultAPIVersions := fs.Bool("no-default-api-versions", false, "")
	includeCrds := fs.Bool("include-crds", false, "")
	skipSchema := fs.Bool("skip-schema-validation", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	// Flags may follow the positional arguments, as with helm.
	var positional []string
	args := os.Args[1:]
	for {
		if err := fs.Parse(args); err != nil {
			os.Exit(2)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *help {
		fmt.Print(usage)
		return
	}
	if len(positional) != 2 {
		fmt.Fprint(os.Stderr, "helm-template: want RELEASE_NAME and CHART_DIR\n\n"+usage)
		os.Exit(2)
	}
	out, err := render(renderOptions{
		release: positional[0], chartDir: positional[1], namespace: *namespace,
		valueFiles: valueFiles, sets: sets, setStrings: setStrings, apiVersions: apiVersions,
		kubeVersion: *kubeVersion, includeCrds: *includeCrds, validateSchema: !*skipSchema,
		noDefaultAPIVersions: *noDefaultAPIVersions,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

type renderOptions struct {
	release, chartDir, namespace string
	valueFiles, sets, setStrings []string
	apiVersions                  []string
	kubeVersion                  string
	includeCrds, validateSchema  bool
	noDefaultAPIVersions         bool
}

// Capabilities mirrors helm's chartutil.Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

type KubeVersion struct{ Version, Major, Minor string }

func (k KubeVersion) String() string     { return k.Version }
func (k KubeVersion) GitVersion() string { return k.Version }

// VersionSet is .Capabilities.APIVersions: "group/version" and
// "group/version/Kind" strings.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// Files is .Files: the chart's files other than templates.
type Files map[string][]byte

func (f Files) Get(name string) string      { return string(f[name]) }
func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

// The API groups every Kubernetes 1.25+ server has, as helm's defaults list them
// (helm lists each kind as group/version/Kind too; the chart asks for this one).
var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
	"networking.k8s.io/v1", "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1",
	"coordination.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1",
	"autoscaling/v1", "autoscaling/v2", "discovery.k8s.io/v1", "events.k8s.io/v1",
	"policy/v1/PodDisruptionBudget",
}

func render(o renderOptions) (string, error) {
	chartMeta, err := readYAMLMap(filepath.Join(o.chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	values, err := readYAMLMap(filepath.Join(o.chartDir, "values.yaml"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if values == nil {
		values = map[string]interface{}{}
	}
	for _, f := range o.valueFiles {
		extra, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		values = mergeMaps(values, extra)
	}
	for _, s := range o.sets {
		if err := applySet(values, s, false); err != nil {
			return "", fmt.Errorf("--set %s: %w", s, err)
		}
	}
	for _, s := range o.setStrings {
		if err := applySet(values, s, true); err != nil {
			return "", fmt.Errorf("--set-string %s: %w", s, err)
		}
	}
	if o.validateSchema {
		schemaPath := filepath.Join(o.chartDir, "values.schema.json")
		if raw, err := os.ReadFile(schemaPath); err == nil {
			if errs := validateValues(raw, values); len(errs) > 0 {
				return "", fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n- %s",
					chartMeta["name"], strings.Join(errs, "\n- "))
			}
		}
	}

	files, templates, err := loadChartFiles(o.chartDir)
	if err != nil {
		return "", err
	}
	major, minor := splitKubeVersion(o.kubeVersion)
	apiVersions := VersionSet{}
	if !o.noDefaultAPIVersions {
		apiVersions = append(apiVersions, defaultAPIVersions...)
	}
	apiVersions = append(apiVersions, o.apiVersions...)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartObject(chartMeta),
		"Release": map[string]interface{}{
			"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": Capabilities{
			KubeVersion: KubeVersion{Version: o.kubeVersion, Major: major, Minor: minor},
			APIVersions: apiVersions,
			HelmVersion: map[string]string{"version": "v3.14.0"},
		},
		"Files": files,
	}
	chartName := fmt.Sprint(chartMeta["name"])

	var out strings.Builder
	if o.includeCrds {
		crds, err := filepath.Glob(filepath.Join(o.chartDir, "crds", "*"))
		if err != nil {
			return "", err
		}
		sort.Strings(crds)
		for _, c := range crds {
			ext := filepath.Ext(c)
			if ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			data, err := os.ReadFile(c)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&out, "---\n# Source: %s/crds/%s\n%s\n", chartName, filepath.Base(c),
				strings.TrimRight(string(data), "\n"))
		}
	}

	root := template.New("gotpl")
	funcs := funcMap(root)
	root.Funcs(funcs).Option("missingkey=zero")
	names := make([]string, 0, len(templates))
	for name := range templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := root.New(chartName + "/" + name).Parse(templates[name]); err != nil {
			return "", err
		}
	}
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		full := chartName + "/" + name
		scope := copyMap(top)
		scope["Template"] = map[string]interface{}{"Name": full, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, scope); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		// A template's first "---" would leave an empty document after the header.
		text = strings.TrimPrefix(strings.TrimSpace(text), "---\n")
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, text)
	}
	return out.String(), nil
}

func chartObject(meta map[string]interface{}) map[string]interface{} {
	c := map[string]interface{}{}
	for k, v := range meta {
		// helm exposes Chart.yaml's keys capitalised: .Chart.Name, .Chart.AppVersion.
		c[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return c
}

func splitKubeVersion(v string) (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return parts[0], "0"
	}
	return parts[0], parts[1]
}

// loadChartFiles returns the chart's non-template files (for .Files) and its
// templates by path relative to the chart ("templates/x.yaml"). Symbolic links
// are followed, as helm's loader does (the chart's crds/ is one).
func loadChartFiles(dir string) (Files, map[string]string, error) {
	files := Files{}
	templates := map[string]string{}
	var walk func(abs, rel string, depth int) error
	walk = func(abs, rel string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("%s: directories nested too deep (a symlink loop?)", abs)
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join(abs, e.Name())
			r := path.Join(rel, e.Name())
			info, err := os.Stat(p) // follows links
			if err != nil {
				return err
			}
			if info.IsDir() {
				if err := walk(p, r, depth+1); err != nil {
					return err
				}
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if strings.HasPrefix(r, "templates/") {
				templates[r] = string(data)
			} else {
				files[r] = data
			}
		}
		return nil
	}
	return files, templates, walk(dir, "", 0)
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

func copyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mergeMaps merges `over` into `base` recursively; a null in `over` deletes the
// key, as helm's coalescing does.
func mergeMaps(base, over map[string]interface{}) map[string]interface{} {
	out := copyMap(base)
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
