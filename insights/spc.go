package insights

import "math"

// The special-cause rules of NHS England's "Making Data Count" (MDC) for an XmR chart, as the
// NHS-R community's implementation of them, NHSRplotthedots, applies them (docs/insights.md,
// "SPC charts", has the sources): a point beyond a process limit; a run of ShiftRun points on
// one side of the mean; a trend of TrendRun points each higher (or lower) than the last; two
// of three points in a row close to one limit (beyond two sigma on the same side).
const (
	// ShiftRun points in a row above (or below) the mean are a shift. A point on the mean
	// breaks a run.
	ShiftRun = 7
	// TrendRun points in a row, each higher (or each lower) than the one before, are a trend.
	TrendRun = 7
	// limitFactor turns the mean moving range into three sigma (3/1.128, rounded as every
	// XmR reference rounds it).
	limitFactor = 2.66
)

// Direction says which way a measure gets better, for the MDC variation and assurance icons.
type Direction int

const (
	// Neutral: neither way is better (purple special-cause icons).
	Neutral Direction = iota
	// HigherBetter and LowerBetter mark improvement (blue) and concern (orange).
	HigherBetter
	LowerBetter
)

// Rule names a special-cause rule a point is flagged by.
type Rule string

// The rules.
const (
	RuleBeyondLimits Rule = "beyond_limits"
	RuleShift        Rule = "shift"
	RuleTrend        Rule = "trend"
	RuleTwoOfThree   Rule = "two_of_three"
)

// SPC is an XmR chart of a series: its mean, process limits and the special causes.
type SPC struct {
	Values []float64 `json:"values"`
	Mean   float64   `json:"mean"`
	// MeanRange is the mean moving range; UCL and LCL are mean ± 2.66 × MeanRange.
	MeanRange float64 `json:"mean_moving_range"`
	UCL       float64 `json:"ucl"`
	LCL       float64 `json:"lcl"`
	// Flags lists, for each point, the rules that flag it (nil for common cause).
	Flags [][]Rule `json:"flags"`
	// Side is +1 for a point flagged above the mean, -1 below, 0 not flagged.
	Side []int `json:"side"`
	// Variation and Assurance are the MDC icons for the latest point and for the target.
	Variation string `json:"variation"`
	Assurance string `json:"assurance,omitempty"`
}

// Variation icons: common cause, or special cause high or low, as improvement, concern or
// neither.
const (
	VariationCommon          = "common_cause"
	VariationImprovementHigh = "improvement_high"
	VariationImprovementLow  = "improvement_low"
	VariationConcernHigh     = "concern_high"
	VariationConcernLow      = "concern_low"
	VariationNeutralHigh     = "neutral_high"
	VariationNeutralLow      = "neutral_low"
)

// Assurance icons: the target is always met, never met, or sometimes (within the limits).
const (
	AssurancePass       = "pass"
	AssuranceFail       = "fail"
	AssuranceHitAndMiss = "hit_and_miss"
)

// XmR computes the chart of values with the limits from all of them. target, when not NaN,
// gives the assurance icon. Fewer than two values give a chart with no limits and no flags.
func XmR(values []float64, dir Direction, target float64) SPC {
	n := len(values)
	c := SPC{Values: values, Flags: make([][]Rule, n), Side: make([]int, n), Variation: VariationCommon}
	if n < 2 {
		if n == 1 {
			c.Mean, c.UCL, c.LCL = values[0], values[0], values[0]
		}
		return c
	}
	for _, v := range values {
		c.Mean += v
	}
	c.Mean /= float64(n)
	for i := 1; i < n; i++ {
		c.MeanRange += math.Abs(values[i] - values[i-1])
	}
	c.MeanRange /= float64(n - 1)
	c.UCL, c.LCL = c.Mean+limitFactor*c.MeanRange, c.Mean-limitFactor*c.MeanRange
	sigma := (c.UCL - c.Mean) / 3
	flag := func(i int, r Rule, side int) {
		for _, have := range c.Flags[i] {
			if have == r {
				return
			}
		}
		c.Flags[i] = append(c.Flags[i], r)
		c.Side[i] = side
	}
	side := func(v float64) int {
		switch {
		case v > c.Mean:
			return 1
		case v < c.Mean:
			return -1
		}
		return 0
	}
	for i, v := range values {
		switch {
		case v > c.UCL:
			flag(i, RuleBeyondLimits, 1)
		case v < c.LCL:
			flag(i, RuleBeyondLimits, -1)
		}
	}
	// Shift: every point of a run of ShiftRun or more on one side.
	for i := 0; i < n; {
		s, j := side(values[i]), i
		for j < n && s != 0 && side(values[j]) == s {
			j++
		}
		if s != 0 && j-i >= ShiftRun {
			for k := i; k < j; k++ {
				flag(k, RuleShift, s)
			}
		}
		i = max(j, i+1)
	}
	// Trend: every point of a run of TrendRun or more, each above (below) the last.
	for i := 0; i < n-1; {
		d, j := sign(values[i+1]-values[i]), i+1
		for j < n && d != 0 && sign(values[j]-values[j-1]) == d {
			j++
		}
		if d != 0 && j-i >= TrendRun {
			for k := i; k < j; k++ {
				flag(k, RuleTrend, side(values[k]))
			}
		}
		i = max(j-1, i+1)
	}
	// Two of three in a row beyond two sigma on the same side: those two are flagged.
	near := func(v float64) int {
		switch {
		case v > c.Mean+2*sigma:
			return 1
		case v < c.Mean-2*sigma:
			return -1
		}
		return 0
	}
	for i := 0; i+2 < n; i++ {
		for _, s := range []int{1, -1} {
			var hits []int
			for k := i; k < i+3; k++ {
				if near(values[k]) == s {
					hits = append(hits, k)
				}
			}
			if len(hits) >= 2 {
				for _, k := range hits {
					flag(k, RuleTwoOfThree, s)
				}
			}
		}
	}
	c.Variation = variation(c.Side[n-1], dir)
	if !math.IsNaN(target) {
		c.Assurance = assurance(c, dir, target)
	}
	return c
}

func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// variation is the MDC variation icon of the latest point, flagged on side (0: not flagged).
func variation(side int, dir Direction) string {
	switch {
	case side == 0:
		return VariationCommon
	case dir == Neutral && side > 0:
		return VariationNeutralHigh
	case dir == Neutral:
		return VariationNeutralLow
	case side > 0 && dir == HigherBetter:
		return VariationImprovementHigh
	case side > 0:
		return VariationConcernHigh
	case dir == LowerBetter:
		return VariationImprovementLow
	}
	return VariationConcernLow
}

// assurance is the MDC assurance icon: the process limits both on the good side of the target
// (pass), both on the bad side (fail), or the target between them (hit and miss). A measure
// with no better direction has none.
func assurance(c SPC, dir Direction, target float64) string {
	switch {
	case dir == Neutral:
		return ""
	case target > c.LCL && target < c.UCL:
		return AssuranceHitAndMiss
	case (dir == HigherBetter) == (c.LCL >= target):
		return AssurancePass
	}
	return AssuranceFail
}

// Flagged returns the indexes of the points any rule flags.
func (c SPC) Flagged() []int {
	var out []int
	for i, f := range c.Flags {
		if len(f) > 0 {
			out = append(out, i)
		}
	}
	return out
}
