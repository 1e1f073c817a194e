package ops

import (
	"net/url"
	"strings"
	"testing"
)

// nextCases are sign-in redirects that must stay on this site, among them the ones browsers
// read as another origin: a tab or newline dropped from "/\t/evil" leaves "//evil", and a
// backslash is read as a slash.
var nextCases = []struct{ in, want string }{
	{"", "/"},
	{"/", "/"},
	{"/incidents?state=failed", "/incidents?state=failed"},
	{"/incidents/datix/INC-1", "/incidents/datix/INC-1"},
	{"/incidents/datix/A%2FB", "/incidents/datix/A%2FB"},
	{"//evil.example", "/"},
	{"///evil.example", "/"},
	{"/\t/evil.example", "/"},
	{"/%09/evil.example", "/"},
	{"/\n/evil.example", "/"},
	{"/\r/evil.example", "/"},
	{`/\evil.example`, "/"},
	{`\/evil.example`, "/"},
	{"/%5Cevil.example", "/"},
	{"/%2F/evil.example", "/"},
	{"/%2f%2fevil.example", "/"},
	{"https://evil.example/", "/"},
	{"http:evil.example", "/"},
	{"javascript:alert(1)", "/"},
	{"evil.example", "/"},
	{" /incidents", "/"},
	{"/\x00", "/"},
	{"/\u00a0/evil", "/"},
	{"/%E3%80%82evil", "/%E3%80%82evil"},
}

func TestSafeNext(t *testing.T) {
	for _, tc := range nextCases {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSafeNext: whatever next= holds, the redirect resolves to this site, and a browser
// that drops tabs and newlines and reads backslashes as slashes (as the URL standard says)
// still finds this site.
func FuzzSafeNext(f *testing.F) {
	for _, tc := range nextCases {
		f.Add(tc.in)
	}
	base, _ := url.Parse("https://psgw.example/")
	f.Fuzz(func(t *testing.T, in string) {
		got := safeNext(in)
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("safeNext(%q) = %q: not a path", in, got)
		}
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(got)
		for _, s := range []string{got, browser} {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatalf("safeNext(%q) = %q: does not parse: %v", in, got, err)
			}
			if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
				t.Fatalf("safeNext(%q) = %q: leads to %s", in, got, r)
			}
		}
		if strings.ContainsAny(got, "\\\t\r\n") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) = %q", in, got)
		}
		if dec, err := url.PathUnescape(got); err == nil && (strings.HasPrefix(dec, "//") || strings.Contains(dec, `\`)) {
			t.Fatalf("safeNext(%q) = %q: decodes to %q", in, got, dec)
		}
	})
}
