package a

import (
	"time"

	other "github.com/hwcaudit/hwcaudit/cmd/exporter/internal/envdoc/testdata/b"
)

// Config is what the test extracts.
type Config struct {
	// Sinks are the destinations. Default "file".
	Sinks []string `env:"A_SINKS,default=file"`
	// Low and High bound the range. Defaults 1 and 9.
	Low  int `env:"A_LOW,default=1"`
	High int `env:"A_HIGH,default=9"`
	// Wait is how long to wait.
	//
	// Maintainers: this paragraph is not help.
	Wait time.Duration `env:"A_WAIT,default=5s"`

	Nested other.Config
	Again  *other.Config // re-reads B_URL: not walked
	inner  other.Config
	Local  local
	When   time.Time
}

type local struct {
	// Name names it.
	Name string `env:"A_NAME"`
}
