package b

// Config is a nested configuration.
type Config struct {
	// URL is where it goes. Default "http://x" (not this one).
	URL string `env:"B_URL,default=http://x"`
}
