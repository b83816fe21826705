package protocol

// TOTPDigits is how many digits a second-factor code has: the directory
// makes and checks RFC 6238 codes of this length, and the Mac refuses any
// other before sending it.
const TOTPDigits = 6

// ValidTOTPCode reports whether s has the shape of a code: exactly
// TOTPDigits ASCII digits.
func ValidTOTPCode(s string) bool {
	if len(s) != TOTPDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
