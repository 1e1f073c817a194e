package config

import (
	"errors"
	"regexp"
)

// Credentials can sit inside values that are not secrets by name: a URL with a user and
// password (https://user:pass@host, nats://user:pass@host), a database connection string
// (postgres://psgw:pass@db/datix, or host=db password=pass). A configuration error may
// quote such a value, and it is printed at start-up and logged, so every error this package
// returns passes through RedactCredentials.
var (
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s"'` + "`" + `]*@`)
	dsnPassword = regexp.MustCompile(`(?i)\b(password|passwd|pwd|pass|secret|token|key)(\s*=\s*)('[^']*'|"[^"]*"|[^\s&;"'` + "`" + `,]+)`)
)

// RedactCredentials returns s with the user and password of every URL in it, and the value
// of every password= (and the like) key of a connection string, replaced by REDACTED.
func RedactCredentials(s string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}REDACTED@")
	return dsnPassword.ReplaceAllString(s, "${1}${2}REDACTED")
}

// redactedError is err with RedactCredentials applied to its text; nil stays nil. The
// result keeps err in its chain only when the text did not change, so that unwrapping it
// cannot give back the original words.
func redactedError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := RedactCredentials(msg); red != msg {
		return errors.New(red)
	}
	return err
}
