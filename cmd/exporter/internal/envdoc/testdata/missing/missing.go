package missing

// Config has an undocumented variable.
type Config struct {
	// A is documented.
	A string `env:"M_A"`
	B string `env:"M_B"`
}
