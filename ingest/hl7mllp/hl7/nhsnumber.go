package hl7

// nhsNumberProblem returns why s is not a valid NHS number, or "" when it
// is. An NHS number is 10 digits whose last is a Modulus 11 check digit:
// weights 10 down to 2 on the first nine, check = 11 - sum mod 11, where 11
// means 0 and 10 means no valid number.
func nhsNumberProblem(s string) string {
	if len(s) != 10 || !allDigits(s) {
		return "NHS number must be 10 digits"
	}
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(s[i]-'0') * (10 - i)
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 || check != int(s[9]-'0') {
		return "NHS number fails the Modulus 11 check"
	}
	return ""
}
