package linuxonly

// X does not exist on darwin at all; that is not an error.
func X() int { return undefinedOnPurpose }
