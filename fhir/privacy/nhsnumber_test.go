package privacy

import "testing"

func TestValidNHSNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"nhs example", "9434765919", true},
		{"another valid", "4010232137", true},
		{"check digit 11 becomes 0", "0000000000", true},
		{"wrong check digit", "9434765918", false},
		{"check digit would be 10", "2563416850", false},
		{"nine digits", "943476591", false},
		{"eleven digits", "94347659190", false},
		{"spaces", "943 476 5919", false},
		{"letter", "943476591A", false},
		{"non-ascii digits", "９４３４７６５９１９", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidNHSNumber(tt.in); got != tt.want {
				t.Errorf("ValidNHSNumber(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
