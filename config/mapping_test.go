package config

import (
	"strings"
	"testing"
)

// TestMappingSettings: the mapping's privacy and fidelity switches take their documented
// values, and any other is an error naming the key.
func TestMappingSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"bracket", func(c *Config) { c.Mapping.AgePrecision = "bracket" }, ""},
		{"age precision", func(c *Config) { c.Mapping.AgePrecision = "years" }, `mapping.age_precision: must be exact or bracket, got "years"`},
		{"no placeholders", func(c *Config) { c.Mapping.PlaceholderBirthDates = nil }, ""},
		{"placeholder not a date", func(c *Config) { c.Mapping.PlaceholderBirthDates = []string{"1900-01-01", "01/01/1900"} },
			`mapping.placeholder_birth_dates[1]: must be a date YYYY-MM-DD`},
		{"placeholder impossible date", func(c *Config) { c.Mapping.PlaceholderBirthDates = []string{"1900-02-30"} },
			`mapping.placeholder_birth_dates[0]: must be a date YYYY-MM-DD`},
		{"fallbacks quarantine", func(c *Config) { c.Mapping.Fallbacks = "quarantine" }, ""},
		{"fallbacks", func(c *Config) { c.Mapping.Fallbacks = "reject" }, `mapping.fallbacks: must be warn or quarantine, got "reject"`},
		{"source fallbacks", func(c *Config) { c.Sources = map[string]SourceConfig{"datix": {Fallbacks: "drop"}} },
			`sources.datix.fallbacks: must be warn or quarantine, got "drop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestQuarantinesFallbacks(t *testing.T) {
	c := Default()
	c.Sources = map[string]SourceConfig{"strict": {Fallbacks: "quarantine"}, "lax": {Fallbacks: "warn"}, "plain": {}}
	for src, want := range map[string]bool{"strict": true, "lax": false, "plain": false, "unlisted": false} {
		if got := c.QuarantinesFallbacks(src); got != want {
			t.Errorf("mapping.fallbacks warn, %s: got %v, want %v", src, got, want)
		}
	}
	c.Mapping.Fallbacks = "quarantine"
	for src, want := range map[string]bool{"strict": true, "lax": false, "plain": true, "unlisted": true} {
		if got := c.QuarantinesFallbacks(src); got != want {
			t.Errorf("mapping.fallbacks quarantine, %s: got %v, want %v", src, got, want)
		}
	}
}

// TestBaseURLMustBeHTTPS: the national service is reached over https; plain http only to
// this machine (a simulator in tests and demos) or with national.allow_http. A URL with a
// user and password is refused, and the password never appears in the error (issue 15).
func TestBaseURLMustBeHTTPS(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		want      string
	}{
		{"https://psims-uat.azure-api.net", false, ""},
		{"https://psims-uat.azure-api.net:443/", false, ""},
		{"http://127.0.0.1:8090", false, ""},
		{"http://127.8.9.10:8090", false, ""},
		{"http://[::1]:8090", false, ""},
		{"http://localhost:8090", false, ""},
		{"http://lfpse:8090", true, ""},
		{"http://psims-uat.azure-api.net", false, "national.base_url: must use https"},
		{"http://10.0.0.5:8090", false, "national.base_url: must use https"},
		{"http://localhost.example.com", false, "national.base_url: must use https"},
		{"ftp://host", false, `national.base_url: must use https, got "ftp"`},
		{"https://user:s3cr3t-Pa55@psims-uat.azure-api.net", false, "national.base_url: must not hold a user name or password"},
		{"https://s3cr3t-Pa55@psims-uat.azure-api.net/path", false, "national.base_url: must not hold a user name or password"},
		{"psims-uat.azure-api.net", false, "national.base_url: must be an absolute URL"},
		{"https://host/api?password=s3cr3t-Pa55", false, "national.base_url: must be a host with no path or query"},
	} {
		c := Default()
		c.National.BaseURL, c.National.SubscriptionKey, c.National.AllowHTTP = tc.url, "k", tc.allowHTTP
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.url, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cr3t"):
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
}

// TestConfigErrorsNeverShowCredentials: wherever a value with credentials is quoted in an
// error, from the YAML file, the environment or validation, the user and password are not.
func TestConfigErrorsNeverShowCredentials(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	check := func(where string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: got no error", where)
			return
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the password: %v", where, err)
		}
	}
	c := Default()
	c.Queue.NATSURL = "http://psgw:" + secret + "@nats:4222"
	check("queue.nats_url", c.Validate())

	_, err := Load(writeFile(t, "national:\n  timeout: postgres://psgw:"+secret+"@db:5432/datix\n"), nil)
	check("a YAML value of the wrong type", err)
	_, err = Load("", []string{"PSGW_NATIONAL_TIMEOUT=nats://psgw:" + secret + "@nats:4222"})
	check("an environment value of the wrong type", err)
	_, err = Load("", []string{"PSGW_QUEUE_REPLICAS=host=db user=psgw password=" + secret})
	check("a key/value DSN where a number goes", err)
	_, err = Load(writeFile(t, "queue:\n  nats_url: [nats://psgw:"+secret+"@nats:4222\n"), nil)
	check("YAML that does not parse", err)

	for in, want := range map[string]string{
		"https://user:" + secret + "@host/x":                     "https://REDACTED@host/x",
		"postgres://psgw:" + secret + "@db/datix":                "postgres://REDACTED@db/datix",
		"host=db password=" + secret + " dbname=datix":           "host=db password=REDACTED dbname=datix",
		"postgres://db/datix?sslmode=require&password=" + secret: "postgres://db/datix?sslmode=require&password=REDACTED",
		"no credentials here: https://host:443":                  "no credentials here: https://host:443",
	} {
		if got := RedactCredentials(in); got != want {
			t.Errorf("RedactCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}
