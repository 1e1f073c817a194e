// Package insightstest holds the planted series the SPC tests share: the unit test of the
// XmR calculation and the browser test of the page must agree on what is planted where.
package insightstest

// PlantedWeeks are 30 weekly counts: a stable process around 22 that crosses its mean at
// least every few weeks, an outlier beyond the upper limit in week PlantedOutlier, and a shift
// of eight weeks above the mean (PlantedShift), inside the limits and away from them.
var PlantedWeeks = []int{
	19, 27, 20, 26, 18, 70, 21, 27, 19, 26,
	20, 27, 18, 26, 21, 27, 20, 19, 28, 30,
	29, 31, 28, 30, 29, 31, 19, 26, 20, 27,
}

// PlantedOutlier is the week of the outlier; PlantedShift the weeks of the shift.
var (
	PlantedOutlier = 5
	PlantedShift   = []int{18, 19, 20, 21, 22, 23, 24, 25}
)

// Flagged are the weeks a correct chart flags, in order: the outlier and the shift.
func Flagged() []int { return append([]int{PlantedOutlier}, PlantedShift...) }
