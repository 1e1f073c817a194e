package insights

import (
	"math"
	"slices"
	"testing"

	"github.com/psgw/psgw/insights/insightstest"
)

var (
	plantedSeries  = floats(insightstest.PlantedWeeks)
	plantedOutlier = insightstest.PlantedOutlier
	plantedShift   = insightstest.PlantedShift
)

func floats(ns []int) []float64 {
	out := make([]float64, len(ns))
	for i, n := range ns {
		out[i] = float64(n)
	}
	return out
}

func TestXmRFlagsPlantedShiftAndOutlierOnly(t *testing.T) {
	c := XmR(plantedSeries, Neutral, math.NaN())
	want := insightstest.Flagged()
	if got := c.Flagged(); !slices.Equal(got, want) {
		t.Fatalf("flagged %v, want %v (mean %.2f, limits %.2f..%.2f, flags %v)", got, want, c.Mean, c.LCL, c.UCL, c.Flags)
	}
	if !slices.Contains(c.Flags[plantedOutlier], RuleBeyondLimits) {
		t.Errorf("outlier flags %v, want beyond_limits", c.Flags[plantedOutlier])
	}
	for _, i := range plantedShift {
		if !slices.Equal(c.Flags[i], []Rule{RuleShift}) {
			t.Errorf("week %d flags %v, want [shift]", i, c.Flags[i])
		}
	}
	if c.Variation != VariationCommon {
		t.Errorf("variation %s, want common_cause: the latest week is not flagged", c.Variation)
	}
}

func TestXmRRules(t *testing.T) {
	flat := func(n int, v float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v + float64(i%2)*4 - 2
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		values []float64
		want   []int
		rule   Rule
	}{
		{"six above is not a shift", append(flat(13, 20), 23, 23, 23, 23, 23, 23, 17), nil, ""},
		{"seven rising is a trend", append(flat(13, 20), 15, 16, 17, 18, 19, 20, 21, 18, 22, 18), []int{13, 14, 15, 16, 17, 18, 19}, RuleTrend},
		{"six rising is not", append(flat(13, 20), 15, 16, 17, 18, 19, 20, 18, 22, 18), nil, ""},
		{"two of three near the upper limit", append(flat(16, 20), 32, 19, 32, 21, 18), []int{16, 18}, RuleTwoOfThree},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := XmR(tc.values, Neutral, math.NaN())
			if got := c.Flagged(); !slices.Equal(got, tc.want) {
				t.Fatalf("flagged %v, want %v (mean %.2f, limits %.2f..%.2f, flags %v)", got, tc.want, c.Mean, c.LCL, c.UCL, c.Flags)
			}
			for _, i := range tc.want {
				if !slices.Contains(c.Flags[i], tc.rule) {
					t.Errorf("point %d flags %v, want %s", i, c.Flags[i], tc.rule)
				}
			}
		})
	}
}

func TestXmRIcons(t *testing.T) {
	high := append(slices.Clone(plantedSeries[:20]), 29, 31, 28, 30, 29, 31, 30, 29)
	for _, tc := range []struct {
		dir       Direction
		target    float64
		variation string
		assurance string
	}{
		{Neutral, math.NaN(), VariationNeutralHigh, ""},
		{HigherBetter, 0, VariationImprovementHigh, AssurancePass},
		{LowerBetter, 0, VariationConcernHigh, AssuranceFail},
		{LowerBetter, 25, VariationConcernHigh, AssuranceHitAndMiss},
	} {
		c := XmR(high, tc.dir, tc.target)
		if c.Variation != tc.variation || c.Assurance != tc.assurance {
			t.Errorf("direction %d target %v: icons %s/%s, want %s/%s (limits %.1f..%.1f)", tc.dir, tc.target, c.Variation, c.Assurance, tc.variation, tc.assurance, c.LCL, c.UCL)
		}
	}
}
