package spec

import "fmt"

// CheckEnvKey returns an error when k cannot be set as an environment
// variable of an app (bad name, or one moorage sets itself). `moorage config
// set` uses it.
func CheckEnvKey(k string) error {
	if why := checkEnvKey(k); why != "" {
		return fmt.Errorf("%s: %s", k, why)
	}
	return nil
}

// CheckName returns an error when name is not a valid app, service,
// accessory or volume name.
func CheckName(name string) error {
	if why := checkName(name); why != "" {
		return fmt.Errorf("name %s", why)
	}
	return nil
}
