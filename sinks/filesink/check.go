package filesink

import "os"

// Check creates dir as New would (0750) when it is missing, then creates
// and removes a file in it: a check that passes means a Log can publish
// files there. The dead-letter directory, written by a Log too, is checked
// the same way.
func Check(dir string) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".hwcaudit-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
