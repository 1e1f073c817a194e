package privacy

import (
	"fmt"
	"strings"
	"testing"
)

// hostileKnown is what one incident may carry at most (100 patients, ids of 64 characters,
// ParseIncident's limits), chosen to make matching slow: ids that share all but their last
// character, dates of birth and names; hostileText is a text of MaxText characters that
// matches every id's prefix everywhere.
func hostileKnown() Known {
	var k Known
	for i := range 100 {
		k.LocalIDs = append(k.LocalIDs, strings.Repeat("a", 62)+fmt.Sprintf("%02d", i))
		k.BirthDates = append(k.BirthDates, fmt.Sprintf("19%02d-01-%02d", i, 1+i%28))
		k.NHSNumbers = append(k.NHSNumbers, fmt.Sprintf("94347659%02d", i))
		k.Names = append(k.Names, fmt.Sprintf("Name%c%c", 'a'+i%26, 'a'+i/26))
	}
	return k
}

var hostileTexts = map[string]string{
	"letters": strings.Repeat("a ", MaxText/2),
	"digits":  strings.Repeat("1 ", MaxText/2),
	"dates":   strings.Repeat("01/01/19 ", MaxText/9),
}

// BenchmarkRedactorHostile reports the time to redact one free-text field of MaxText
// characters built to be slow, with the most identifiers an incident can carry.
func BenchmarkRedactorHostile(b *testing.B) {
	r := NewRedactor(hostileKnown())
	for name, text := range hostileTexts {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				r.Text(text)
			}
		})
	}
}
