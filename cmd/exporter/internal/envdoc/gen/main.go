// Command gen writes cmd/exporter/help_gen.go: the environment variables of
// the exporter's Config, from their env tags and doc comments. Run it with
// `go generate ./cmd/exporter`; a test fails while help_gen.go is stale.
package main

import (
	"fmt"
	"os"

	"github.com/hwcaudit/hwcaudit/cmd/exporter/internal/envdoc"
)

func main() {
	// go generate runs in the directory of the file holding the directive.
	vars, err := envdoc.Extract(".", "Config")
	if err == nil {
		var src []byte
		src, err = envdoc.Generate(vars, "cmd/exporter/internal/envdoc/gen", "main", "variables", "variable")
		if err == nil {
			err = os.WriteFile("help_gen.go", src, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "envdoc:", err)
		os.Exit(1)
	}
}
